"""Rule neurflow_claims: writes results/reproduction/neurflow_claims.csv (claim NF-12)."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging


def main(smk) -> None:
    configure_logging(smk.log[0])
    jobs.neurflow_claims(masking=list(smk.input), rows=smk.output[0])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
