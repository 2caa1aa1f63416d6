"""Rule fig14_side_by_side: writes results/figures/naps/fig14_pair{pair}_side_by_side.png."""

from conceptscope.naps import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    inputs = dict(smk.input.items())  # a, b (the two NAP files), manifest
    pair = int(smk.wildcards.pair)
    run_job(smk, jobs.fig14_side_by_side, png=smk.output[0], pair=pair, **inputs, **dict(smk.params.items()))
