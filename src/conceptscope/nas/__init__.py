"""NAS, the Neuron Activation Sorter (MIT M.Eng. thesis, reference/papers.md §3).

Modules: :mod:`~conceptscope.nas.core` (zero-aligned ranges, the layer
summary, the neuron taxonomy, sampling), :mod:`~conceptscope.nas.views`
(layer summary PNG and HTML page, neuron views, taxonomy chart),
:mod:`~conceptscope.nas.jobs` (the rules' jobs), :mod:`~conceptscope.nas.claims`
(NAS-1) and :mod:`~conceptscope.nas.settings` (the ``nas`` config section).

The names of the former ``conceptscope.nas`` and ``conceptscope.nas_views``
modules are available here; the views' names load :mod:`matplotlib` on first
use only, so reading the settings (at workflow parse time) stays light.
"""

from ..exports import lazy_exports

# the modules whose public names (their __all__) this package gives, looked up in this order
_MODULES = ("settings", "claims", "core", "views")
__getattr__, __dir__ = lazy_exports(__name__, _MODULES)
