"""Rule nas_layer_views: the layer summary PNG (fig3-1) and HTML page, and the neuron views folder (fig3-2)."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging


def main(smk) -> None:
    configure_logging(smk.log[0])
    p = smk.params
    jobs.nas_layer_views(
        summary=smk.input.summary,
        table=smk.input.table,
        dataset=p.dataset,
        dataset_id=p.dataset_id,
        split=smk.params.split,
        manifest=smk.input.manifest,
        max_rows=p.max_rows,
        thresholds=p.thresholds,
        per_type=p.per_type,
        max_per_range=p.max_per_range,
        png=smk.output.png,
        html=smk.output.html,
        neurons=smk.output.neurons,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
