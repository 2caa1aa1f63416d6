"""Rule fit_single_nmf: writes results/nmf/{model}/single/{layer}.pt (the layer's own factorization)."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging, set_threads


def main(smk) -> None:
    configure_logging(smk.log[0])
    set_threads(smk.threads)
    jobs.fit_single_nmf(cache=smk.input.cache, result=smk.output[0], **dict(smk.params.items()))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
