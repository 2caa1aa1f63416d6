"""Rule fig6_disentanglement: writes results/figures/naps/fig6_{model}_disentanglement.{csv,png}."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging


def main(smk) -> None:
    configure_logging(smk.log[0])
    files = {tuple(pair): path for pair, path in zip(smk.params.pairs, smk.input, strict=True)}
    jobs.fig6_disentanglement(files=files, layers=smk.params.layers, csv=smk.output.csv, png=smk.output.png)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
