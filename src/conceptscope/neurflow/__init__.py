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
- :mod:`.knockout` -- knock-out losses L(S, a) (Def. 2) batched across channel subsets;
- :mod:`.experiments`, :mod:`.attribution`, :mod:`.knockoffs`, :mod:`.baselines`, :mod:`.fidelity` -- the
  paper's evaluations of core sets: optimality and correlations (Fig. 4, 6, 11, 12), captum attribution
  methods and NeuCEPT knockoffs (Fig. 10-11), NeuronMCT-style masks and L2 weights (Tables 3-4), fidelity
  (Fig. 5, 16, 17), k ablation (Table 5), crop sizes (Fig. 18); :mod:`.eval_plots` draws them;
- :mod:`.jobs`, :mod:`.evaluation_jobs` -- one function per workflow rule; :mod:`.claims`,
  :mod:`.eval_claims`, :mod:`.fidelity_claims` -- the claim rules NF-12 and NF-1 ... NF-11.

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
    "knockout",
    "experiments",
    "attribution",
    "knockoffs",
    "baselines",
    "fidelity",
    "eval_claims",
    "fidelity_claims",
    "eval_plots",
    "views",
    "page",
    "labelling",
    "prompts",
    "plots",
)
__getattr__, __dir__ = lazy_exports(__name__, _MODULES)
