rule prepare_split:
    output:
        "results/data/{dataset}/{split}.csv",
    log:
        "logs/prepare_split/{dataset}_{split}.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        dataset=get_dataset,
    script:
        "../scripts/prepare_split.py"
