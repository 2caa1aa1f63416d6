"""Rule atlas_page: writes results/index.html (the linked pages are inputs only so that they exist first)."""

from conceptscope.atlas import site
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    inputs = {k: v for k, v in smk.input.items() if k != "linked"}
    run_job(smk, site.atlas_page, **smk.params, **inputs, **smk.output)
