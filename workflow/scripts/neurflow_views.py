"""Rule neurflow_views: the circuit figure (fig7), its HTML view and the concept-labelling export folder."""

from conceptscope.neurflow import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.neurflow_views, **smk.params, **smk.input, **smk.output)
