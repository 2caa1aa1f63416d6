"""Rule neurflow_circuit: writes results/neurflow/{model}/class{cls}/circuit.json and levels.pt."""

from conceptscope.neurflow import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(
        smk,
        jobs.neurflow_circuit,
        model_id=smk.wildcards.model,
        weights=smk.input.weights,
        cache=smk.input.cache,
        dataset=smk.params.dataset,
        split=smk.params.split,
        manifest=smk.input.manifest,
        class_index=int(smk.wildcards.cls),
        layers=smk.params.layers,
        settings=smk.params.settings,
        device=smk.params.device,
        circuit=smk.output.circuit,
        arrays=smk.output.arrays,
    )
