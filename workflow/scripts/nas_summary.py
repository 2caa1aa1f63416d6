"""Rule nas_summary: writes results/nas/{model}/{layer}/summary.h5 and taxonomy.csv."""

from conceptscope.nas import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.nas_summary, **smk.params, **smk.input, **smk.output)
