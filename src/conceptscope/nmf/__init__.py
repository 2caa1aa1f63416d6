"""Coupled NMF concept analysis (Saini and Papalexakis, "Analyzing Representations inside CNNs").

Pixels and layer activations factored into shared latent concepts, and what
the paper reads from them:

- :mod:`.solvers`: the coupled, single-layer and group-sparse multiplicative
  updates (:func:`fit_coupled`, :func:`fit_single`, :func:`fit_group_sparse`,
  :class:`CoupledNMF`); :mod:`.init`: their NNDSVD initialization; :mod:`.blocks`:
  the data blocks' exact norms and residuals, block scaling, :func:`objective`,
  :func:`block_residuals`; :mod:`.updates`: the update steps;
- :mod:`.analysis`: factor similarity and eigenvalues (Fig. 2-3), class weights
  (Table 1), pixel masks and latent neighbours (Fig. 4-5);
- :mod:`.tcav`: TCAV of the latent concepts (Fig. 6); :mod:`.views`: the figures;
- :mod:`.jobs` (the workflow's rules), :mod:`.claims` (NMF-1 to NMF-5),
  :mod:`.settings` (config section ``nmf``).

The public names of those modules (their ``__all__``) are attributes of this
package, imported on first use: reading the settings at workflow parse time
loads neither matplotlib nor captum.
"""

from ..exports import lazy_exports

# the modules whose public names (their __all__) this package gives, looked up in this order
_MODULES = ("settings", "claims", "solvers", "blocks", "init", "analysis", "tcav", "views")
__getattr__, __dir__ = lazy_exports(__name__, _MODULES)
