"""Rules cache_activations_{model}: write results/activations/{model}/{split}/{layer}.h5."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging, set_threads


def main(smk) -> None:
    configure_logging(smk.log[0])
    set_threads(smk.threads)
    jobs.cache_activations(
        **dict(smk.params.items()),
        weights=smk.input.weights,
        manifest=smk.input.manifest,
        split=smk.wildcards.split,
        outputs=list(smk.output),
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
