"""Rule neurflow_claims: writes results/reproduction/neurflow_claims.csv (claims NF-1 ... NF-12)."""

from conceptscope.neurflow import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.neurflow_claims, **{k: list(v) for k, v in smk.input.items()}, **smk.output)
