# Config → target tables, input functions and wildcard constraints.
# Scripts never read config: everything they need arrives through params.

import re

from snakemake.utils import validate

from conceptscope.workflow import canonical, check_config

validate(config, "../schemas/config.schema.yaml")
check_config(config)

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


def _alternatives(names):
    return "|".join(re.escape(n) for n in names)


wildcard_constraints:
    model=_alternatives(MODELS),
    dataset=_alternatives(DATASETS),
    split=_alternatives(SPLITS),


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


def get_claim_rows():
    return [f for files in PAPERS_RUN.values() for f in files]


def get_not_run_reasons():
    return {
        p: "no rule of the suite computes this paper's claims yet"
        for p in ("naps", "nmf", "nas", "neurflow")
        if p not in PAPERS_RUN
    }


def get_final_output():
    targets = ["results/reproduction/claims.csv", "results/reproduction/claims.md"]
    for m, spec in MODELS.items():
        targets.append(f"results/figures/models/{m}_training.png")
        for s in spec["splits"]:
            targets += activation_files(m, s)
    return targets
