"""Rule nap_paper_comparison: writes results/figures/naps/fig6_paper_comparison.csv (ours beside the authors')."""

from conceptscope.naps import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.nap_paper_comparison, tables=list(smk.input), settings=smk.params.settings, csv=smk.output[0])
