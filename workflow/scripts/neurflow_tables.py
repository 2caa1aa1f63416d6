"""Rule neurflow_tables: see conceptscope.neurflow.evaluation_jobs.neurflow_tables."""

from conceptscope.neurflow import evaluation_jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, evaluation_jobs.neurflow_tables, **smk.params, **smk.input, **smk.output)
