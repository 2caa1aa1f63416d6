"""Rule atlas_faithfulness_table: writes results/figures/atlas/faithfulness.csv and .png."""

from conceptscope.atlas import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.atlas_faithfulness_table, **smk.params, **smk.input, **smk.output)
