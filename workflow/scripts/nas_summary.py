"""Rule nas_summary: writes results/nas/{model}/{split}/{layer}/summary.h5 and taxonomy.csv."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging


def main(smk) -> None:
    configure_logging(smk.log[0])
    s = smk.params.settings
    jobs.nas_summary(
        cache=smk.input.cache,
        dataset=smk.params.dataset,
        dataset_id=smk.params.dataset_id,
        split=smk.params.split,
        manifest=smk.input.manifest,
        per_class=s["per_class"],
        n_ranges=s["n_ranges"],
        aggregation=s["aggregation"],
        taxonomy=s["taxonomy"],
        seed=smk.params.seed,
        summary=smk.output.summary,
        table=smk.output.table,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
