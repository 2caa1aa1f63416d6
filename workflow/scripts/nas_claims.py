"""Rule nas_claims: writes results/reproduction/nas_claims.csv (claim NAS-1)."""

from conceptscope.nas import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.nas_claims, counts=list(smk.input), expected=dict(smk.params.expected), rows=smk.output[0])
