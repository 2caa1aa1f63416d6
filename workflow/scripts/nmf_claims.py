"""Rule nmf_claims: writes results/reproduction/nmf_claims.csv (claims NMF-1, NMF-2)."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging


def main(smk) -> None:
    configure_logging(smk.log[0])
    jobs.nmf_claims(fig3=list(smk.input.fig3), rows=smk.output[0])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
