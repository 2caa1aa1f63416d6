rule train_model:
    input:
        unpack(get_train_manifests),
    output:
        weights="results/models/{model}/weights.pt",
        metrics="results/models/{model}/metrics.json",
    log:
        "logs/train_model/{model}.log",
    benchmark:
        "results/benchmarks/train_model/{model}.tsv"
    conda:
        "../envs/conceptscope.yaml"
    threads: config["threads_per_job"]
    resources:
        **GPU_RESOURCES,
    params:
        model_id=lambda w: w.model,
        spec=lambda w: MODELS[w.model]["spec"],
        dataset=get_dataset,
        pretrained=lambda w: MODELS[w.model]["pretrained"],
        input_size=lambda w: MODELS[w.model]["input_size"],
        train=lambda w: MODELS[w.model]["train"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/train_model.py"


rule plot_training:
    input:
        "results/models/{model}/metrics.json",
    output:
        png=report(
            "results/figures/models/{model}_training.png",
            caption="../report/training.rst",
            category="Models",
        ),
        csv="results/figures/models/{model}_training.csv",
    log:
        "logs/plot_training/{model}.log",
    conda:
        "../envs/conceptscope.yaml"
    script:
        "../scripts/plot_training.py"
