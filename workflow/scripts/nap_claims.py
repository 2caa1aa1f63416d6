"""Rule nap_claims: writes results/reproduction/naps_claims.csv (claims NAP-1, NAP-2, NAP-4)."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging


def main(smk) -> None:
    configure_logging(smk.log[0])
    jobs.nap_claims(fig6=list(smk.input.fig6), fig8=list(smk.input.fig8), rows=smk.output[0])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
