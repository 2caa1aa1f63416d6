"""Rule nap_paper_comparison: writes results/figures/naps/fig6_paper_comparison.csv (ours beside the authors')."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging


def main(smk) -> None:
    configure_logging(smk.log[0])
    jobs.nap_paper_comparison(tables=list(smk.input), reference=smk.params.reference, csv=smk.output[0])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
