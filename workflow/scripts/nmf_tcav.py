"""Rule nmf_tcav: writes results/figures/nmf/fig6_{model}_tcav.{csv,png} (TCAV of latent concepts).

The rule's params, inputs and outputs are the job's keyword arguments, by name.
"""

from conceptscope.nmf import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.nmf_tcav, **smk.params, **smk.input, **smk.output)
