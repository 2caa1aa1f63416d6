rule gather_claims:
    input:
        get_claim_rows(),
    output:
        csv="results/reproduction/claims.csv",
        md="results/reproduction/claims.md",
    log:
        "logs/gather_claims/gather_claims.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        not_run_reasons=get_not_run_reasons(),
    script:
        "../scripts/gather_claims.py"
