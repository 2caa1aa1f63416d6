"""Rule train_model: writes results/models/{model}/weights.pt and metrics.json."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging, set_threads


def main(smk) -> None:
    configure_logging(smk.log[0])
    set_threads(smk.threads)
    jobs.train_model(
        **dict(smk.params.items()),
        manifests=dict(smk.input.items()),
        weights=smk.output.weights,
        metrics=smk.output.metrics,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
