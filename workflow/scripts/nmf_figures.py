"""Rule nmf_figures: Fig. 2, Fig. 3, Table 1, Fig. 4-5 of one model under results/figures/nmf/.

Writes fig2_{model}_similarity.png, fig3_{model}_eigen.csv/.png, table1_{model}_factors.csv/.png,
fig4_{model}_masks_neighbours.png, fig4_{model}_neighbour_purity.csv (latent-neighbour label purity against a
label-permutation null, claim NMF-4) and fig5_{model}_accuracy_impurity.png/.csv.

The rule's params, inputs and outputs are the job's keyword arguments, by name.
"""

from conceptscope.nmf import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.nmf_figures, **smk.params, **smk.input, **smk.output)
