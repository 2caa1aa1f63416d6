"""Rule nas_taxonomy: writes results/figures/nas/taxonomy_{model}_counts.{csv,png} (units per type per layer)."""

from conceptscope.nas import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.nas_taxonomy, **smk.params, **smk.input, **smk.output)
