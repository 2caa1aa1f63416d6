"""Rule fit_coupled_nmf: writes results/nmf/{model}/coupled.pt (P, O, F, block residuals), coupled_losses.csv
and results/figures/nmf/fit_{model}_residuals.csv (each block's relative residual).

The rule's params, inputs and outputs are the job's keyword arguments, by name.
"""

from conceptscope.nmf import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.fit_coupled_nmf, **smk.params, **smk.input, **smk.output)
