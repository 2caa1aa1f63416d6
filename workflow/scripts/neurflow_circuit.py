"""Rule neurflow_circuit: writes results/neurflow/{model}/class{cls}/circuit.json and levels.pt."""

from conceptscope.neurflow import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.neurflow_circuit, **smk.params, **smk.input, **smk.output)
