"""Rule gather_claims: writes results/reproduction/claims.csv and claims.md."""

from conceptscope import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(
        smk,
        jobs.gather_claims,
        row_files=list(smk.input),
        not_run_reasons=smk.params.not_run_reasons,
        csv=smk.output.csv,
        md=smk.output.md,
    )
