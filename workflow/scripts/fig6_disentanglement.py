"""Rule fig6_disentanglement: writes results/figures/naps/fig6_{model}_disentanglement.{csv,png}."""

from conceptscope.naps import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    files = {tuple(pair): path for pair, path in zip(smk.params.pairs, smk.input, strict=True)}
    params = {k: smk.params[k] for k in ("layers", "settings", "seed")}
    run_job(smk, jobs.fig6_disentanglement, files=files, **params, **dict(smk.output.items()))
