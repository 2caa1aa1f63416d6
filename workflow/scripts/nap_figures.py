"""Rules nap_figures_{model}: NAP galleries (Fig. 1 per layer, Fig. 7, Fig. 9/10) and the model's NAP browser."""

from conceptscope.naps import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    params = dict(smk.params.items())  # model_id, dataset, layers, settings; pairs name the NAP files
    files = {tuple(pair): path for pair, path in zip(params.pop("pairs"), smk.input.naps, strict=True)}
    outputs = {"figures": list(smk.output.figures), "browser": smk.output.browser}
    run_job(smk, jobs.nap_figures, files=files, manifest=smk.input.manifest, **outputs, **params)
