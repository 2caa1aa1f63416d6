"""Neural Activation Patterns (Bäuerle, Jönsson, Ropinski): NAPs per layer, their figures, browser and claims.

Modules:

- :mod:`~conceptscope.naps.core`: location disentanglement, unit equalization
  (paper Eq. 2), HDBSCAN extraction, :class:`NapResult` and its HDF5 files;
- :mod:`~conceptscope.naps.views`: galleries (paper Fig. 1, 7, 9/10, 14);
- :mod:`~conceptscope.naps.browser`: the self-contained HTML NAP browser
  (page assets in ``static/``);
- :mod:`~conceptscope.naps.plots`: NAP counts (Fig. 6, Fig. 8);
- :mod:`~conceptscope.naps.claims`: the claim rules NAP-1, NAP-2, NAP-4;
- :mod:`~conceptscope.naps.settings`: :class:`NapSettings`, the ``naps`` config section;
- :mod:`~conceptscope.naps.jobs`: one function per workflow rule.
"""

from .browser import write_browser
from .claims import nap_1, nap_2, nap_4
from .core import (
    DISENTANGLEMENTS,
    FORMAT_VERSION,
    HDBSCAN_PARAMS,
    NORMALIZATIONS,
    STATISTIC_NAMES,
    ClusterResult,
    NapResult,
    cluster,
    disentangle,
    extract_naps,
    feature_units,
    load_result,
    normalize,
    pairwise_distances,
    save_result,
    unit_statistics,
)
from .plots import plot_input_size, plot_nap_counts
from .settings import NapInputSize, NapSettings
from .views import plot_aggregation_gallery, plot_follow_image, plot_models_side_by_side, plot_nap_gallery

__all__ = [
    "DISENTANGLEMENTS",
    "FORMAT_VERSION",
    "HDBSCAN_PARAMS",
    "NORMALIZATIONS",
    "STATISTIC_NAMES",
    "ClusterResult",
    "NapInputSize",
    "NapResult",
    "NapSettings",
    "cluster",
    "disentangle",
    "extract_naps",
    "feature_units",
    "load_result",
    "nap_1",
    "nap_2",
    "nap_4",
    "normalize",
    "pairwise_distances",
    "plot_aggregation_gallery",
    "plot_follow_image",
    "plot_input_size",
    "plot_models_side_by_side",
    "plot_nap_counts",
    "plot_nap_gallery",
    "save_result",
    "unit_statistics",
    "write_browser",
]
