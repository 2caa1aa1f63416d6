"""NeurFlow (Cao et al., "NeurFlow: Interpreting Neural Networks through Neuron Groups and Functional
Interactions", ICLR 2025): core concept neurons by integrated gradients, neuron groups, circuits.

Modules, bottom up:

- :mod:`.settings` -- :class:`NeurFlowSettings`, the ``neurflow`` config section (defaults and checks);
- :mod:`.patches` -- the class's images cut into patches, concepts (top-k patches) from patch means;
- :mod:`.blocks` -- :class:`BlockChain`, the ``torch.fx`` sub-networks between probed blocks, and
  :func:`spatial_mean` for every block layout (maps channels first or last, tokens, vectors);
- :mod:`.neuron_importance` -- IG quadratures, :func:`importance` (paper Eq. 2) for many targets
  at once, :func:`adaptive_importance`, :func:`core_neurons` (with :mod:`.accumulate` and
  :mod:`.affine`, the shared passes and the affine first stage);
- :mod:`.groups` -- semantic groups, neuron groups, edge weights, the debugging metric;
- :mod:`.circuit` -- :func:`build_circuit`, the circuit of one class from the logit down;
- :mod:`.evaluate` -- masking groups against random neurons, the debugging metric of images;
- :mod:`.views`, :mod:`.page`, :mod:`.labelling`, :mod:`.prompts`, :mod:`.plots` -- the circuit
  figure (Fig. 7), its HTML page, the concept-labelling export, the masking figure (Fig. 9);
- :mod:`.jobs` -- one function per workflow rule; :mod:`.claims` -- the claim rule NF-12.

No public function modifies its tensor or array arguments, nor leaves a model in another mode.

Every public name of those modules is available here (``from conceptscope import neurflow as nf;
nf.importance(...)``), imported when first used, so reading the settings at workflow parse time
does not load matplotlib or scikit-learn.
"""

from ..exports import lazy_exports

# the modules whose public names (their __all__) this package gives, looked up in this order
_MODULES = (
    "settings",
    "claims",
    "patches",
    "blocks",
    "neuron_importance",
    "groups",
    "circuit",
    "evaluate",
    "views",
    "page",
    "labelling",
    "prompts",
    "plots",
)
__getattr__, __dir__ = lazy_exports(__name__, _MODULES)
