"""Rule fig6_disentanglement: writes results/figures/naps/fig6_{model}_disentanglement.{csv,png}."""

from conceptscope.naps import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    files = {tuple(pair): path for pair, path in zip(smk.params.pairs, smk.input, strict=True)}
    run_job(smk, jobs.fig6_disentanglement, files=files, layers=smk.params.layers, **dict(smk.output.items()))
