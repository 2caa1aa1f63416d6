"""Rule neurflow_claims: writes results/reproduction/neurflow_claims.csv (claim NF-12)."""

from conceptscope.neurflow import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.neurflow_claims, masking=list(smk.input), rows=smk.output[0])
