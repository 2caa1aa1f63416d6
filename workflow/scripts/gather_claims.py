"""Rule gather_claims: writes results/reproduction/claims.csv and claims.md."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging


def main(smk) -> None:
    configure_logging(smk.log[0])
    jobs.gather_claims(
        row_files=list(smk.input),
        not_run_reasons=smk.params.not_run_reasons,
        csv=smk.output.csv,
        md=smk.output.md,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
