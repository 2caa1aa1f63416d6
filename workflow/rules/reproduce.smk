rule gather_claims:
    input:
        get_claim_rows(),
    output:
        csv="results/reproduction/claims.csv",
        md="results/reproduction/claims.md",
        html=report(
            "results/reproduction/claims.html",
            caption="../report/claims.rst",
            category="Claims",
        ),
    log:
        "logs/gather_claims/gather_claims.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        not_run_reasons=get_not_run_reasons(),
    script:
        "../scripts/gather_claims.py"


# Before the first job: results that killed jobs were writing (temporary files
# beside their outputs, never accepted as outputs) are removed.
onstart:
    remove_leftovers()


# The closing lines of a run: claim counts, the claims table, the HTML pages,
# how to build the report. After a failure: how to resume.
onsuccess:
    print(
        run_summary(
            "results", workflow.overwrite_configfiles, SNAKEMAKE, moved_workdir()
        )
    )


onerror:
    print(RECOVERY_HINT)
