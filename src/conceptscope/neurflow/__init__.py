"""NeurFlow (Cao et al., "NeurFlow: Interpreting Neural Networks through Neuron Groups and Functional
Interactions", ICLR 2025): core concept neurons by integrated gradients, neuron groups, circuits.

Modules, bottom up:

- :mod:`.settings` -- :class:`NeurFlowSettings`, the ``neurflow`` config section (defaults and checks);
- :mod:`.patches` -- the class's images cut into patches, concepts (top-k patches) from patch means;
- :mod:`.blocks` -- :class:`BlockChain`, the ``torch.fx`` sub-networks between probed blocks;
- :mod:`.neuron_importance` -- IG quadratures, :func:`importance` (paper Eq. 2) for many targets
  at once, :func:`adaptive_importance`, :func:`core_neurons` (with :mod:`.accumulate` and
  :mod:`.affine`, the shared passes and the affine first stage);
- :mod:`.groups` -- semantic groups, neuron groups, edge weights, the debugging metric;
- :mod:`.circuit` -- :func:`build_circuit`, the circuit of one class from the logit down;
- :mod:`.evaluate` -- masking groups against random neurons, the debugging metric of images;
- :mod:`.views`, :mod:`.page`, :mod:`.labelling`, :mod:`.prompts`, :mod:`.plots` -- the circuit
  figure (Fig. 7), its HTML page, the concept-labelling export, the masking figure (Fig. 9);
- :mod:`.jobs` -- one function per workflow rule; :mod:`.claims` -- the claim rule NF-12.

Every public name of those modules is available here (``from conceptscope import neurflow as nf;
nf.importance(...)``), imported when first used, so reading the settings at workflow parse time
does not load matplotlib or scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import Any

# submodule -> the public names it exports here (its __all__; a test keeps the two equal)
_EXPORTS = {
    "settings": "IG_STEPS METHODS NeurFlowBatchSize NeurFlowSettings",
    "patches": "PATCH_SCALES circuit_patch_images class_patches concept_means make_patches top_k_patches",
    "blocks": "BlockChain spatial_mean",
    "neuron_importance": "adaptive_importance core_neurons importance integrated_gradients",
    "groups": "NeuronGroup SemanticGroup best_ward_clusters debugging_metric edge_weights group_edges "
    "neuron_groups rank_patches semantic_groups",
    "circuit": "CIRCUIT_DEFAULTS CircuitResult build_circuit",
    "evaluate": "class_images debugging_table masking_effect masking_table",
    "views": "plot_circuit validate_circuit",
    "page": "write_circuit_html",
    "labelling": "write_labelling_export",
    "prompts": "CIRCUIT_ANSWER_FORM CIRCUIT_INSTRUCTIONS CIRCUIT_PROMPT GROUP_ANSWER_FORM GROUP_INSTRUCTIONS "
    "GROUP_PROMPT PROMPT_ROLE",
    "plots": "plot_masking",
    "claims": "nf_12",
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names.split()}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
