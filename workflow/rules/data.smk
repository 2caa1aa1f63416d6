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


# `snakemake prefetch`: on a machine with internet (a cluster's login node, where
# this local rule runs), download every pretrained weight and data archive the
# config needs into the caches the compute jobs read. Offline it fails naming
# each missing item, its cache directory and this command.
rule prefetch:
    output:
        "results/prefetch.txt",
    log:
        "logs/prefetch/prefetch.log",
    localrule: True
    conda:
        "../envs/conceptscope.yaml"
    params:
        models_config=MODELS,
        datasets=DATASETS,
    script:
        "../scripts/prefetch.py"
