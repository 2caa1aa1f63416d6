"""Rule fig8_input_size: writes results/figures/naps/fig8_{model}_input_size.{csv,png}."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging


def main(smk) -> None:
    configure_logging(smk.log[0])
    jobs.fig8_input_size(tables=list(smk.input), csv=smk.output.csv, png=smk.output.png)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
