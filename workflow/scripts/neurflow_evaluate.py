"""Rule neurflow_evaluate: masking.csv and fig9 (group vs random neurons), debugging_metric.csv (metric M)."""

from conceptscope.neurflow import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.neurflow_evaluate, **smk.params, **smk.input, **smk.output)
