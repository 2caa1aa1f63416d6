"""Rule nas_layer_views: the layer summary PNG (fig3-1) and HTML page, and the neuron views folder (fig3-2)."""

from conceptscope.nas import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.nas_layer_views, **smk.params, **smk.input, **smk.output)
