"""Rule prepare_split: writes results/data/{dataset}/{split}.csv, the split's manifest."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging


def main(smk) -> None:
    configure_logging(smk.log[0])
    jobs.prepare_split(smk.params.dataset, smk.params.dataset_id, smk.wildcards.split, smk.output[0])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
