"""Rules cache_activations_{model}: write results/activations/{model}/{split}/{layer}.h5."""

from conceptscope import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.cache_activations, **smk.params, **smk.input, outputs=list(smk.output))
