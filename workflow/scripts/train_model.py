"""Rule train_model: writes results/models/{model}/weights.pt and metrics.json."""

from conceptscope import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(
        smk,
        jobs.train_model,
        **dict(smk.params.items()),
        manifests=dict(smk.input.items()),
        weights=smk.output.weights,
        metrics=smk.output.metrics,
    )
