"""Rule atlas_alignment: writes results/figures/atlas/alignment_{model}.csv and its heatmaps."""

from conceptscope.atlas import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.atlas_alignment, **smk.params, **smk.input, **smk.output)
