"""Rule gather_claims: writes results/reproduction/claims.csv and claims.md."""

from conceptscope import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.gather_claims, **smk.params, row_files=list(smk.input), **smk.output)
