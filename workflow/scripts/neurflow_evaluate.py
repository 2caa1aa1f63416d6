"""Rule neurflow_evaluate: masking.csv and fig9 (group vs random neurons), debugging_metric.csv (metric M)."""

from conceptscope.neurflow import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(
        smk,
        jobs.neurflow_evaluate,
        circuit=smk.input.circuit,
        arrays=smk.input.arrays,
        weights=smk.input.weights,
        caches=dict(zip(smk.params.layers, smk.input.caches, strict=True)),
        dataset=smk.params.dataset,
        manifest=smk.input.manifest,
        settings=smk.params.settings,
        seed=smk.params.seed,
        device=smk.params.device,
        masking=smk.output.masking,
        debug=smk.output.debug,
        png=smk.output.png,
    )
