"""Rule extract_naps: writes results/naps/{model}/{split}/{layer}/{method}.h5, one per disentanglement."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging, set_threads


def main(smk) -> None:
    configure_logging(smk.log[0])
    set_threads(smk.threads)
    jobs.extract_naps(
        cache=smk.input.cache,
        outputs=dict(zip(smk.params.methods, smk.output, strict=True)),
        normalization=smk.params.normalization,
        max_precomputed=smk.params.max_precomputed,
        device=smk.params.device,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
