"""Rule nmf_group_sparse: writes results/figures/nmf/table2_{model}_group_sparse.csv (paper Table 2)."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging, set_threads


def main(smk) -> None:
    configure_logging(smk.log[0])
    set_threads(smk.threads)
    jobs.nmf_group_sparse(
        weights=smk.input.weights,
        caches=list(smk.input.caches),
        manifest=smk.input.manifest,
        csv=smk.output[0],
        **dict(smk.params.items()),
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
