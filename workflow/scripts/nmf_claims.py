"""Rule nmf_claims: writes results/reproduction/nmf_claims.csv (claims NMF-1 to NMF-5).

Reads the Fig. 3 tables (NMF-1, NMF-2), the Table 1 factor tables (NMF-3), the latent-neighbour purity
tables (NMF-4) and the group-sparse Table 2 factor tables beside Table 1 (NMF-5; none when nmf.lam_group is 0).

The rule's params, inputs and outputs are the job's keyword arguments, by name.
"""

from conceptscope.nmf import jobs
from conceptscope.runtime import run_job

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake's script directive
    run_job(smk, jobs.nmf_claims, **smk.params, **smk.input, **smk.output)
