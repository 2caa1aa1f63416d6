"""Rule nmf_tcav: writes results/figures/nmf/fig6_{model}_tcav.{csv,png} (TCAV of latent concepts)."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging, set_threads


def main(smk) -> None:
    configure_logging(smk.log[0])
    set_threads(smk.threads)
    jobs.nmf_tcav(
        weights=smk.input.weights,
        coupled=smk.input.coupled,
        manifest=smk.input.manifest,
        csv=smk.output.csv,
        png=smk.output.png,
        **dict(smk.params.items()),
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
