"""Rule neurflow_attribution: see conceptscope.neurflow.evaluation_jobs.neurflow_attribution."""

from conceptscope.neurflow import evaluation_jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, evaluation_jobs.neurflow_attribution, **smk.params, **smk.input, **smk.output)
