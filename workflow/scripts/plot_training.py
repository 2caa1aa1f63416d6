"""Rule plot_training: writes results/figures/models/{model}_training.{png,csv}."""

from conceptscope import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.plot_training, metrics=smk.input[0], png=smk.output.png, csv=smk.output.csv)
