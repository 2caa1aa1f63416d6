"""Rule neurflow_views: the circuit figure (fig7), its HTML view and the concept-labelling export folder."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging


def main(smk) -> None:
    configure_logging(smk.log[0])
    jobs.neurflow_views(
        circuit=smk.input.circuit,
        weights=smk.input.weights,
        dataset=smk.params.dataset,
        dataset_id=smk.params.dataset_id,
        manifest=smk.input.manifest,
        per_group=smk.params.per_group,
        png=smk.output.png,
        html=smk.output.html,
        labelling=smk.output.labelling,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
