"""Rule neurflow_circuit: writes results/neurflow/{model}/class{cls}/circuit.json and levels.pt."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging, set_threads


def main(smk) -> None:
    configure_logging(smk.log[0])
    set_threads(smk.threads)
    p = smk.params
    jobs.neurflow_circuit(
        model_id=smk.wildcards.model,
        weights=smk.input.weights,
        cache=smk.input.cache,
        dataset=p.dataset,
        dataset_id=p.dataset_id,
        split=p.split,
        manifest=smk.input.manifest,
        class_index=int(smk.wildcards.cls),
        layers=p.layers,
        max_images=p.max_images,
        settings=p.settings,
        batch_size=p.batch_size,
        device=p.device,
        circuit=smk.output.circuit,
        arrays=smk.output.arrays,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
