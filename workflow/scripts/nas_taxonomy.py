"""Rule nas_taxonomy: writes results/figures/nas/taxonomy_{model}_counts.{csv,png} (units per type per layer)."""

from conceptscope.nas import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(
        smk,
        jobs.nas_taxonomy,
        model_id=smk.wildcards.model,
        layers=list(smk.params.layers),
        summaries=list(smk.input.summaries),
        tables=list(smk.input.tables),
        csv=smk.output.csv,
        png=smk.output.png,
    )
