"""Rule nap_input_sizes: writes results/naps/{model}/{split}/{layer}/input_sizes.csv (Fig. 8 data)."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging, set_threads


def main(smk) -> None:
    configure_logging(smk.log[0])
    set_threads(smk.threads)
    jobs.nap_input_sizes(cache=smk.input.cache, csv=smk.output[0], **dict(smk.params.items()))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
