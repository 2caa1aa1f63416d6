"""Rule prefetch: downloads the pretrained weights and data archives a config needs (results/prefetch.txt)."""

from conceptscope import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.prefetch, **smk.params, done=smk.output[0])
