"""Rule fit_coupled_nmf: writes results/nmf/{model}/coupled.pt (P, O, F) and coupled_losses.csv.

The rule's params, inputs and outputs are the job's keyword arguments, by name.
"""

from conceptscope.nmf import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.fit_coupled_nmf, **smk.params, **smk.input, **smk.output)
