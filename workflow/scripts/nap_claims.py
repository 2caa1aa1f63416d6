"""Rule nap_claims: writes results/reproduction/naps_claims.csv (claims NAP-1, NAP-2, NAP-4)."""

from conceptscope.naps import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.nap_claims, fig6=list(smk.input.fig6), fig8=list(smk.input.fig8), rows=smk.output[0])
