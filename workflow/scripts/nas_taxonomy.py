"""Rule nas_taxonomy: writes results/figures/nas/taxonomy_{model}_counts.{csv,png} (units per type per layer)."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging


def main(smk) -> None:
    configure_logging(smk.log[0])
    jobs.nas_taxonomy(
        model_id=smk.wildcards.model,
        layers=smk.params.layers,
        summaries=list(smk.input.summaries),
        tables=list(smk.input.tables),
        csv=smk.output.csv,
        png=smk.output.png,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
