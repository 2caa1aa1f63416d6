"""Rule nas_claims: writes results/reproduction/nas_claims.csv (claim NAS-1)."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging


def main(smk) -> None:
    configure_logging(smk.log[0])
    jobs.nas_claims(counts=list(smk.input), expected=dict(smk.params.expected), rows=smk.output[0])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
