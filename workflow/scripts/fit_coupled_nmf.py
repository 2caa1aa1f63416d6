"""Rule fit_coupled_nmf: writes results/nmf/{model}/coupled.pt (P, O, F) and coupled_losses.csv."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging, set_threads


def main(smk) -> None:
    configure_logging(smk.log[0])
    set_threads(smk.threads)
    jobs.fit_coupled_nmf(
        weights=smk.input.weights,
        caches=list(smk.input.caches),
        manifest=smk.input.manifest,
        result=smk.output.result,
        losses=smk.output.losses,
        **dict(smk.params.items()),
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
