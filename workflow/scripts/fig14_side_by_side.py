"""Rule fig14_side_by_side: writes results/figures/naps/fig14_pair{pair}_side_by_side.png."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging


def main(smk) -> None:
    configure_logging(smk.log[0])
    jobs.fig14_side_by_side(
        a=smk.input.a, b=smk.input.b, manifest=smk.input.manifest, png=smk.output[0], **dict(smk.params.items())
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
