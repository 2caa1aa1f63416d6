"""Rule nmf_figures: Fig. 2, Fig. 3, Table 1, Fig. 4-5 of one model under results/figures/nmf/."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging


def main(smk) -> None:
    configure_logging(smk.log[0])
    jobs.nmf_figures(
        coupled=smk.input.coupled,
        singles=list(smk.input.singles),
        manifest=smk.input.manifest,
        **dict(smk.output.items()),
        **dict(smk.params.items()),
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
