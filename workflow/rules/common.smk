# Config → target tables, input functions and wildcard constraints.
# Scripts never read config: everything they need arrives through params.

import os
import re

from conceptscope.runtime import (
    remove_stale_temporaries,
    run_summary,
    snakemake_command,
)
from conceptscope.workflow import canonical, validate_config

# schema (defaults filled in), then the cross-field checks; a few lines on error,
# the validator's full report in logs/config_error.log
validate_config(
    config,
    f"{workflow.basedir}/workflow/schemas/config.schema.yaml",
    detail="logs/config_error.log",
)

DATASETS = canonical(config["datasets"])
MODELS = canonical(config["models"])
SPLITS = sorted(
    {
        s
        for m in MODELS.values()
        for s in [*m["splits"], m["train"]["train_split"], m["train"]["eval_split"]]
    }
)
PAPERS_RUN = {}  # paper -> claim-row files; each method's rules add theirs
# Resources of the torch jobs: gpus_per_job GPUs (resource gpu), and with a GPU
# the cores per GPU and the Slurm partition gpu_partition names.
GPU_RESOURCES = {"gpu": config["gpus_per_job"]}
if config["gpus_per_job"]:
    GPU_RESOURCES["cpus_per_gpu"] = config["threads_per_job"]
    if config["gpu_partition"]:
        GPU_RESOURCES["slurm_partition"] = config["gpu_partition"]
NAPS = canonical(config["naps"])
NAP_METHODS = [
    m for m in ("none", "max", "min_max", "mean", "mean_std") if m in NAPS["methods"]
]
# The naps keys a clustering job reads: changing another (galleries, claims) never reruns HDBSCAN.
NAP_CLUSTERING = {k: NAPS[k] for k in ("methods", "normalization", "max_precomputed")}
NAP_INPUT_SIZES = {
    k: NAPS[k] for k in ("input_size", "normalization", "max_precomputed")
}
NMF = canonical(config["nmf"])
NAS = canonical(config["nas"])
NEURFLOW = canonical(config["neurflow"])
LAYERS = sorted({layer for m in MODELS.values() for layer in m["layers"]})


def _alternatives(names):
    return "|".join(re.escape(n) for n in names)


wildcard_constraints:
    model=_alternatives(MODELS),
    dataset=_alternatives(DATASETS),
    split=_alternatives(SPLITS),
    layer=_alternatives(LAYERS),
    pair=r"\d+",
    cls=r"\d+",


def dataset_param(model=None, dataset=None):
    """A rule's `dataset` param: the data set's id and config section (of a model, or by id)."""
    ds = dataset or MODELS[model]["dataset"]
    return {"id": ds, "config": DATASETS[ds]}


def get_dataset(wildcards):
    """`dataset` param of a rule with a {model} or {dataset} wildcard."""
    if "model" in wildcards.keys():
        return dataset_param(wildcards.model)
    return dataset_param(dataset=wildcards.dataset)


def model_splits(model):
    """Splits read by train_model for a model (its training split if it trains, its eval split)."""
    train = MODELS[model]["train"]
    return sorted(
        {train["eval_split"], *([train["train_split"]] if train["epochs"] else [])}
    )


def get_train_manifests(wildcards):
    ds = MODELS[wildcards.model]["dataset"]
    return {s: f"results/data/{ds}/{s}.csv" for s in model_splits(wildcards.model)}


def activation_files(model, split=None):
    """The per-layer cache files of a model (for one split, or a {split} pattern)."""
    split = "{split}" if split is None else split
    return [
        f"results/activations/{model}/{split}/{layer}.h5"
        for layer in MODELS[model]["layers"]
    ]


def full_maps(model, split):
    """Layers whose full maps are cached for a split: the configured ones, plus the
    NAP layers where `none` is clustered on that split."""
    sweep = (
        model in NAPS["models"] and "none" in NAP_METHODS and split == nap_split(model)
    )
    sizes = (
        model in NAPS["input_size"]["models"]
        and NAPS["input_size"]["method"] == "none"
        and split in NAPS["input_size"]["splits"]
    )
    extra = MODELS[model]["layers"] if sweep or sizes else []
    if model in NMF["models"] and split == NMF["split"]:
        extra = [*extra, *nmf_layers(model)]
    return [
        l
        for l in MODELS[model]["layers"]
        if l in MODELS[model]["full_maps"] or l in extra
    ]


# -- NAPs ----------------------------------------------------------------------

from conceptscope.naps.settings import NapSettings

NAP_SETTINGS = NapSettings.from_config(NAPS)


def nap_split(model):
    """The split whose NAPs a model gets (naps.model_splits, else naps.split)."""
    return NAP_SETTINGS.split_of(model)


def nap_manifest(model):
    return f"results/data/{MODELS[model]['dataset']}/{nap_split(model)}.csv"


def nap_files(model, split=None, method=None):
    """NAP result files of a model's layers, in probed order."""
    split = split or nap_split(model)
    methods = [method] if method else NAP_METHODS
    return [
        f"results/naps/{model}/{split}/{layer}/{m}.h5"
        for layer in MODELS[model]["layers"]
        for m in methods
    ]


def nap_pairs(model):
    return [[layer, m] for layer in MODELS[model]["layers"] for m in NAP_METHODS]


def fig8_tables(model):
    return [
        f"results/naps/{model}/{split}/{layer}/input_sizes.csv"
        for split in NAPS["input_size"]["splits"]
        for layer in MODELS[model]["layers"]
    ]


def nap_targets():
    if not NAPS["models"]:
        return []
    out = ["results/reproduction/naps_claims.csv"]
    for m in NAPS["models"]:
        out += [
            f"results/figures/naps/fig6_{m}_disentanglement.png",
            f"results/naps/{m}/browser.html",
        ]
        out += nap_figure_files(m)
    for m in NAPS["input_size"]["models"]:
        out.append(f"results/figures/naps/fig8_{m}_input_size.png")
    out += [
        f"results/figures/naps/fig14_pair{i}_side_by_side.png"
        for i in range(len(NAPS["compare"]))
    ]
    if NAPS["reference"]:
        out.append("results/figures/naps/fig6_paper_comparison.csv")
    return out


def nap_figure_files(model):
    layers = MODELS[model]["layers"]
    return (
        [f"results/figures/naps/fig1_{model}_{layer}_gallery.png" for layer in layers]
        + [f"results/figures/naps/fig7_{model}_aggregations.png"]
        + [
            f"results/figures/naps/fig9_{model}_follow_image{i}.png"
            for i in NAPS["follow_images"]
        ]
    )


def nap_figure_caption(path):
    """The report caption of a gallery of nap_figure_files (Fig. 1, 7 or 9/10), relative to the rules."""
    fig = re.match(r"fig(\d+)_", os.path.basename(path)).group(1)
    return f"../report/naps_fig{fig}.rst"


def compare_files(i):
    """NAP files of Fig. 14 pair i (model_a, layer_a, model_b, layer_b) and the split's manifest."""
    ma, la, mb, lb = NAPS["compare"][i]
    m = NAPS["gallery_method"]
    return (
        f"results/naps/{ma}/{nap_split(ma)}/{la}/{m}.h5",
        f"results/naps/{mb}/{nap_split(mb)}/{lb}/{m}.h5",
        nap_manifest(ma),
    )


# -- coupled NMF ---------------------------------------------------------------


def nmf_layers(model):
    """Layers of the coupled NMF, in depth order: configured, else all probed but the last (logits)."""
    return NMF["layers"].get(model, MODELS[model]["layers"][:-1])


def nmf_caches(model):
    """The activation caches of the layers a model's coupled NMF factors, in depth order."""
    return [
        f"results/activations/{model}/{NMF['split']}/{l}.h5" for l in nmf_layers(model)
    ]


def nmf_manifest(model):
    """The manifest of the split a model's NMF is fitted on."""
    return f"results/data/{MODELS[model]['dataset']}/{NMF['split']}.csv"


def nmf_targets():
    if not NMF["models"]:
        return []
    out = ["results/reproduction/nmf_claims.csv"]
    for m in NMF["models"]:
        out += [
            f"results/figures/nmf/fit_{m}_residuals.csv",
            f"results/figures/nmf/fig2_{m}_similarity.png",
            f"results/figures/nmf/fig3_{m}_eigen.png",
            f"results/figures/nmf/table1_{m}_factors.png",
            f"results/figures/nmf/fig4_{m}_masks_neighbours.png",
            f"results/figures/nmf/fig5_{m}_accuracy_impurity.png",
        ]
        if NMF["tcav"]["factors"]:
            out.append(f"results/figures/nmf/fig6_{m}_tcav.png")
        if NMF["lam_group"] > 0:
            out.append(f"results/figures/nmf/table2_{m}_group_sparse.csv")
    return out


# -- NAS -----------------------------------------------------------------------


def nas_layers(model):
    """Layers NAS summarizes: configured, else every probed layer."""
    return NAS["layers"].get(model, MODELS[model]["layers"])


def nas_split(model):
    return NAS["model_splits"].get(model, NAS["split"])


def nas_cache(model, layer):
    return f"results/activations/{model}/{nas_split(model)}/{layer}.h5"


def nas_manifest(model):
    return f"results/data/{MODELS[model]['dataset']}/{nas_split(model)}.csv"


def nas_files(pattern, model):
    """A {model}/{layer} output pattern of a NAS rule, for every layer NAS summarizes of a model."""
    return expand(pattern, model=model, layer=nas_layers(model))


def nas_targets():
    if not NAS["models"]:
        return []
    out = ["results/reproduction/nas_claims.csv"]
    for m in NAS["models"]:
        out.append(f"results/figures/nas/taxonomy_{m}_counts.png")
        for layer in nas_layers(m):
            out += [
                f"results/figures/nas/fig3-1_{m}_{layer}_summary.png",
                f"results/nas/{m}/{layer}/summary.html",
                f"results/figures/nas/fig3-2_{m}_{layer}_neurons",
            ]
    return out


# -- NeurFlow ------------------------------------------------------------------


from conceptscope.neurflow.settings import NeurFlowSettings

NEURFLOW_SETTINGS = NeurFlowSettings.from_config(NEURFLOW)


def neurflow_split(model):
    """The split whose images a model's circuits are built from (neurflow.model_splits, else neurflow.split)."""
    return NEURFLOW_SETTINGS.split_of(model)


def neurflow_layers(model):
    """Blocks of the circuit from the logit layer down: configured, else the probed layers, top first."""
    return NEURFLOW_SETTINGS.circuit_layers(model, MODELS[model]["layers"])


def neurflow_caches(model):
    return {
        layer: f"results/activations/{model}/{neurflow_split(model)}/{layer}.h5"
        for layer in neurflow_layers(model)
    }


def neurflow_manifest(model):
    return f"results/data/{MODELS[model]['dataset']}/{neurflow_split(model)}.csv"


def neurflow_files(name):
    return [
        f"results/neurflow/{m}/class{c}/{name}"
        for m in NEURFLOW["models"]
        for c in NEURFLOW["classes"]
    ]


def neurflow_model_files(model, name):
    """The per-class files ``name`` of one model's circuits, in the order of neurflow.classes."""
    return [f"results/neurflow/{model}/class{c}/{name}" for c in NEURFLOW["classes"]]


def neurflow_levels(model):
    """The upper blocks of a model's circuit levels (every circuit block but the bottom one)."""
    return neurflow_layers(model)[:-1]


def neurflow_level_files(model, name):
    return [
        f"results/neurflow/{model}/evaluation/{layer}/{name}"
        for layer in neurflow_levels(model)
    ]


def neurflow_l2_blocks(model):
    """Blocks of the L2-weight baseline: neurflow.evaluation.l2_blocks, else the circuit blocks below the logit."""
    return NEURFLOW_SETTINGS.evaluation.l2_blocks.get(model, neurflow_layers(model)[1:])


NEURFLOW_EVALUATION = {
    "optimality": "fig4_{m}_{l}_optimality.csv",
    "correlation": "fig6_{m}_{l}_correlation.csv",
    "methods": "fig11_{m}_{l}_methods.csv",
    "sum_mean": "fig12_{m}_{l}_sum_mean.csv",
    "fidelity": "fig16_{m}_tau.csv",
    "timing": "fig10_{m}_timing.csv",
    "overlaps": "table3_{m}_overlaps.csv",
    "l2": "table4_{m}_l2.csv",
    "k_ablation": "table5_{m}_k_ablation.csv",
    "crops": "fig18_{m}_crops.csv",
}


def neurflow_evaluation_tables(*keys):
    """The evaluation tables ``keys`` (default all) of every NeurFlow model; none when evaluation.run is false."""
    if not NEURFLOW_SETTINGS.evaluation.run:
        return []
    out = []
    for m in NEURFLOW["models"]:
        for key, name in NEURFLOW_EVALUATION.items():
            if keys and key not in keys:
                continue
            layers = neurflow_levels(m) if "{l}" in name else [None]
            out += [f"results/figures/neurflow/{name.format(m=m, l=l)}" for l in layers]
    return out


def neurflow_evaluation_figures():
    """The PNG beside every evaluation table, and the figures without a table the claims read."""
    out = [p.replace(".csv", ".png") for p in neurflow_evaluation_tables()]
    if NEURFLOW_SETTINGS.evaluation.run:
        for m in NEURFLOW["models"]:
            out += [
                f"results/figures/neurflow/fig5_{m}_fidelity.png",
                f"results/figures/neurflow/fig17_{m}_extended.png",
            ]
    return out


def neurflow_targets():
    if not NEURFLOW["models"]:
        return []
    out = ["results/reproduction/neurflow_claims.csv"]
    out += neurflow_evaluation_figures()
    for m in NEURFLOW["models"]:
        for c in NEURFLOW["classes"]:
            out += [
                f"results/figures/neurflow/fig7_{m}_class{c}_circuit.png",
                f"results/neurflow/{m}/class{c}/circuit.html",
                f"results/neurflow/{m}/class{c}/labelling",
                f"results/figures/neurflow/fig9_{m}_class{c}_masking.png",
            ]
    return out


# -- the atlas -----------------------------------------------------------------

from conceptscope.atlas.concepts import METHODS
from conceptscope.atlas.settings import AtlasSettings

ATLAS = canonical(config["atlas"])
ATLAS_SETTINGS = AtlasSettings.from_config(ATLAS)
ATLAS_MODELS = ATLAS_SETTINGS.atlas_models(config)
ATLAS_NAP_METHOD = ATLAS_SETTINGS.nap_variant(NAPS)
_METHOD_SECTIONS = {"naps": NAPS, "nmf": NMF, "nas": NAS, "neurflow": NEURFLOW}


def atlas_methods(model):
    """The methods that ran on a model, in the atlas's order."""
    return [m for m in METHODS if model in _METHOD_SECTIONS[m]["models"]]


def atlas_planted(model):
    """Whether a model's data set plants concepts (then the atlas scores their recovery)."""
    return DATASETS[MODELS[model]["dataset"]]["kind"] == "planted"


def atlas_sources(model):
    """The result files the catalog of a model reads, by the job's argument names."""
    methods = atlas_methods(model)
    out = {}
    if "naps" in methods:
        out["naps"] = nap_files(model)
    if "nmf" in methods:
        out["nmf"] = f"results/nmf/{model}/coupled.pt"
        out["nmf_manifest"] = nmf_manifest(model)
    if "nas" in methods:
        out["nas"] = nas_files("results/nas/{model}/{layer}/summary.h5", model)
        out["nas_manifest"] = nas_manifest(model)
    if "neurflow" in methods:
        out["neurflow"] = neurflow_model_files(model, "circuit.json")
        out["neurflow_arrays"] = neurflow_model_files(model, "levels.pt")
        out["neurflow_manifest"] = neurflow_manifest(model)
    return out


def atlas_manifests(model):
    """The manifests of the splits a model's methods ran on (the planted truth of recovery)."""
    src = atlas_sources(model)
    out = [
        src[k]
        for k in ("nmf_manifest", "nas_manifest", "neurflow_manifest")
        if k in src
    ]
    if "naps" in src:
        out.append(nap_manifest(model))
    return sorted(set(out))


def atlas_faithfulness_inputs(model):
    out = {"weights": f"results/models/{model}/weights.pt"}
    if "naps" in atlas_methods(model):
        out["nap_caches"] = activation_files(model, nap_split(model))
    if "nmf" in atlas_methods(model):
        out["nmf"] = f"results/nmf/{model}/coupled.pt"
        out["nmf_caches"] = nmf_caches(model)
    return out


def atlas_links(model):
    """Links of a model's section of the page ({label, href}) and per method and layer."""
    links, per = [], {}
    methods = atlas_methods(model)
    if "naps" in methods:
        link = {"label": "NAP browser", "href": f"results/naps/{model}/browser.html"}
        links.append(link)
        per["naps"] = {layer: link for layer in MODELS[model]["layers"]}
    if "nmf" in methods:
        link = {
            "label": "NMF factor table (Table 1)",
            "href": f"results/figures/nmf/table1_{model}_factors.png",
        }
        links.append(link)
        per["nmf"] = {layer: link for layer in nmf_layers(model)}
    if "nas" in methods:
        per["nas"] = {}
        for layer in nas_layers(model):
            link = {
                "label": f"NAS summary, {layer}",
                "href": f"results/nas/{model}/{layer}/summary.html",
            }
            links.append(link)
            per["nas"][layer] = link
    if "neurflow" in methods:
        circuits = [
            {"label": f"NeurFlow circuit, class {c}", "href": path}
            for c, path in zip(
                NEURFLOW["classes"], neurflow_model_files(model, "circuit.html")
            )
        ]
        links += circuits
        per["neurflow"] = {layer: circuits[0] for layer in neurflow_layers(model)}
    return links, per


def atlas_page_models():
    out = {}
    for m in ATLAS_MODELS:
        links, per = atlas_links(m)
        out[m] = {
            "dataset": dataset_param(m),
            "layers": MODELS[m]["layers"],
            "methods": atlas_methods(m),
            "links": links,
            "method_links": per,
        }
    return out


def atlas_linked_pages():
    """The pages the atlas links to (built before it, so that no link is dead)."""
    out = []
    for m in ATLAS_MODELS:
        out += [x["href"] for x in atlas_links(m)[0]]
    return out


def atlas_model_files(pattern, models=None):
    """``pattern`` for every atlas model (or ``models``), in order."""
    return [
        pattern.format(model=m) for m in (ATLAS_MODELS if models is None else models)
    ]


def atlas_recovery_models():
    return [m for m in ATLAS_MODELS if atlas_planted(m)]


def atlas_targets():
    if not ATLAS_MODELS:
        return []
    out = ["results/index.html"]
    out += atlas_model_files("results/figures/atlas/alignment_{model}.csv")
    if ATLAS_SETTINGS.faithfulness.run:
        out += [
            "results/figures/atlas/faithfulness.csv",
            "results/figures/atlas/faithfulness.png",
        ]
    for m in atlas_recovery_models():
        out += [
            f"results/figures/atlas/recovery_{m}.csv",
            f"results/figures/atlas/recovery_{m}.png",
        ]
    return out


def atlas_page_inputs(wildcards):
    out = {
        "catalogs": atlas_model_files("results/atlas/{model}/concepts.json"),
        "alignment": atlas_model_files("results/figures/atlas/alignment_{model}.csv"),
        "alignment_figures": atlas_model_files(
            "results/figures/atlas/alignment_{model}"
        ),
        "recovery": atlas_model_files(
            "results/figures/atlas/recovery_{model}.csv", atlas_recovery_models()
        ),
        "claims": "results/reproduction/claims.csv",
        "claims_html": "results/reproduction/claims.html",
        "linked": atlas_linked_pages(),
    }
    if ATLAS_SETTINGS.faithfulness.run:
        out["faithfulness"] = "results/figures/atlas/faithfulness.csv"
        out["faithfulness_png"] = "results/figures/atlas/faithfulness.png"
    return out


# -- claims and final targets --------------------------------------------------


SNAKEMAKE = snakemake_command()  # as this run was called, for the hints
RECOVERY_HINT = f"""
conceptscope: a job failed; its log is named above (logs/<rule>/...).
  Finished targets are kept: fix the cause and run the same command again.
  If Snakemake itself was killed: `{SNAKEMAKE} --unlock`, then run again with
  `--rerun-incomplete` so that half-written outputs are rebuilt.
  With a Slurm profile, "sbatch", "sacct" or "squeue" not found means this machine
  reaches no Slurm: run from the cluster's login node (or set
  slurm-no-account and slurm-status-command: squeue without accounting).
"""


def moved_workdir():
    """The working directory when -d moved it away from where Snakemake was started, else None."""
    here = os.getcwd()
    return (
        here
        if os.path.realpath(here) != os.path.realpath(workflow.workdir_init)
        else None
    )


def remove_leftovers():
    removed = remove_stale_temporaries("results")
    if removed:
        print(f"conceptscope: removed {len(removed)} temporary file(s) of killed jobs")


def get_claim_rows():
    return [f for files in PAPERS_RUN.values() for f in files]


def get_not_run_reasons():
    return {
        p: "no rule of the suite computes this paper's claims yet"
        for p in ("naps", "nmf", "nas", "neurflow")
        if p not in PAPERS_RUN
    }


def get_final_output():
    targets = [
        "results/reproduction/claims.csv",
        "results/reproduction/claims.md",
        "results/reproduction/claims.html",
    ]
    targets += nap_targets()
    targets += nmf_targets()
    targets += nas_targets()
    targets += neurflow_targets()
    targets += atlas_targets()
    for m, spec in MODELS.items():
        targets.append(f"results/figures/models/{m}_training.png")
        for s in spec["splits"]:
            targets += activation_files(m, s)
    return targets
