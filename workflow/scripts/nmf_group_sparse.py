"""Rule nmf_group_sparse: writes results/figures/nmf/table2_{model}_group_sparse.csv (paper Table 2, claim NMF-5).

The rule's params, inputs and outputs are the job's keyword arguments, by name.
"""

from conceptscope.nmf import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.nmf_group_sparse, **smk.params, **smk.input, **smk.output)
