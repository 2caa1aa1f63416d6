"""Rule atlas_recovery: writes results/figures/atlas/recovery_{model}.csv and .png."""

from conceptscope.atlas import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.atlas_recovery, **smk.params, **smk.input, **smk.output)
