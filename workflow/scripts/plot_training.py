"""Rule plot_training: writes results/figures/models/{model}_training.{png,csv}."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging


def main(smk) -> None:
    configure_logging(smk.log[0])
    jobs.plot_training(metrics=smk.input[0], png=smk.output.png, csv=smk.output.csv)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
