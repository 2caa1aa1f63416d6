"""Rule extract_naps: writes results/naps/{model}/{split}/{layer}/{method}.h5, one per disentanglement."""

from conceptscope.naps import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.extract_naps, cache=smk.input.cache, outputs=list(smk.output), **dict(smk.params.items()))
