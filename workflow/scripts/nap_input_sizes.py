"""Rule nap_input_sizes: writes results/naps/{model}/{split}/{layer}/input_sizes.csv (Fig. 8 data)."""

from conceptscope.naps import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.nap_input_sizes, cache=smk.input.cache, csv=smk.output[0], **dict(smk.params.items()))
