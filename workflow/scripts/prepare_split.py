"""Rule prepare_split: writes results/data/{dataset}/{split}.csv, the split's manifest."""

from conceptscope import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.prepare_split, dataset=smk.params.dataset, split=smk.wildcards.split, manifest=smk.output[0])
