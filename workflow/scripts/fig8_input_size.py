"""Rule fig8_input_size: writes results/figures/naps/fig8_{model}_input_size.{csv,png}."""

from conceptscope.naps import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.fig8_input_size, tables=list(smk.input), csv=smk.output.csv, png=smk.output.png)
