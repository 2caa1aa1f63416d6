"""Rule nap_claims: writes results/reproduction/naps_claims.csv (claims NAP-1 to NAP-5).

The rule's params, inputs and outputs are the job's keyword arguments, by name.
"""

from conceptscope.naps import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    inputs = {k: list(v) for k, v in smk.input.items()}  # fig6, fig8, metrics, weights
    run_job(smk, jobs.nap_claims, **inputs, pairs=smk.params.pairs, rows=smk.output[0])
