"""Neural Activation Patterns (Bäuerle, Jönsson, Ropinski): NAPs per layer, their figures, browser and claims.

Modules:

- :mod:`~conceptscope.naps.core`: location disentanglement, unit equalization
  (paper Eq. 2), NAP extraction, :class:`NapResult` and its HDF5 files;
- :mod:`~conceptscope.naps.clustering`: HDBSCAN independent of row order, ties
  (simultaneous merges, as HDBSCAN*) and duplicate rows (finite lambdas);
- :mod:`~conceptscope.naps.reachability`: the exact minimum spanning tree of
  the mutual reachability graph, from the distance matrix or tile by tile in
  bounded memory (CPU or CUDA);
- :mod:`~conceptscope.naps.views`: galleries (paper Fig. 1, 7, 9/10, 14);
- :mod:`~conceptscope.naps.browser`: the self-contained HTML NAP browser
  (page assets in ``static/``);
- :mod:`~conceptscope.naps.plots`: NAP counts (Fig. 6, Fig. 8);
- :mod:`~conceptscope.naps.claims`: the claim rules NAP-1 to NAP-5;
- :mod:`~conceptscope.naps.settings`: :class:`NapSettings`, the ``naps`` config section;
- :mod:`~conceptscope.naps.jobs`: one function per workflow rule.
"""

from ..exports import lazy_exports

# the modules whose public names (their __all__) this package gives, looked up in this order
_MODULES = ("settings", "claims", "clustering", "reachability", "core", "plots", "views", "browser")
__getattr__, __dir__ = lazy_exports(__name__, _MODULES)
