# NeurFlow (Cao et al., ICLR 2025): per class, the circuit from the logit down
# through the probed blocks (JSON, Fig. 7-style figure, HTML view, labelling
# export), the masking and debugging evaluations, and the claim row NF-12.
# Block layouts (models.<id>.layouts, else detected) reach the circuit and the
# evaluations; a class without images predicted as it gets outputs saying so.

if NEURFLOW["models"]:
    PAPERS_RUN["neurflow"] = ["results/reproduction/neurflow_claims.csv"]


rule neurflow_circuit:
    input:
        weights="results/models/{model}/weights.pt",
        cache=lambda w: neurflow_caches(w.model)[neurflow_layers(w.model)[0]],
        manifest=lambda w: neurflow_manifest(w.model),
    output:
        circuit="results/neurflow/{model}/class{cls}/circuit.json",
        arrays="results/neurflow/{model}/class{cls}/levels.pt",
    log:
        "logs/neurflow_circuit/{model}_class{cls}.log",
    benchmark:
        "results/benchmarks/neurflow_circuit/{model}_class{cls}.tsv"
    conda:
        "../envs/conceptscope.yaml"
    threads: config["threads_per_job"]
    resources:
        gpu=config["gpus_per_job"],
    params:
        model_id=lambda w: w.model,
        class_index=lambda w: int(w.cls),
        dataset=get_dataset,
        split=lambda w: neurflow_split(w.model),
        layers=lambda w: neurflow_layers(w.model),
        layouts=lambda w: MODELS[w.model]["layouts"],
        settings=NEURFLOW,
        device=config["device"],
    script:
        "../scripts/neurflow_circuit.py"


rule neurflow_views:
    input:
        circuit=rules.neurflow_circuit.output.circuit,
        weights="results/models/{model}/weights.pt",
        manifest=lambda w: neurflow_manifest(w.model),
    output:
        png=report(
            "results/figures/neurflow/fig7_{model}_class{cls}_circuit.png",
            caption="../report/neurflow_circuit.rst",
            category="NeurFlow",
        ),
        html="results/neurflow/{model}/class{cls}/circuit.html",
        labelling=directory("results/neurflow/{model}/class{cls}/labelling"),
    log:
        "logs/neurflow_views/{model}_class{cls}.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        dataset=get_dataset,
        settings=NEURFLOW,
    script:
        "../scripts/neurflow_views.py"


rule neurflow_evaluate:
    input:
        circuit=rules.neurflow_circuit.output.circuit,
        arrays=rules.neurflow_circuit.output.arrays,
        weights="results/models/{model}/weights.pt",
        caches=lambda w: list(neurflow_caches(w.model).values()),
        manifest=lambda w: neurflow_manifest(w.model),
    output:
        masking="results/neurflow/{model}/class{cls}/masking.csv",
        debug="results/neurflow/{model}/class{cls}/debugging_metric.csv",
        png=report(
            "results/figures/neurflow/fig9_{model}_class{cls}_masking.png",
            caption="../report/neurflow_masking.rst",
            category="NeurFlow",
        ),
    log:
        "logs/neurflow_evaluate/{model}_class{cls}.log",
    conda:
        "../envs/conceptscope.yaml"
    threads: config["threads_per_job"]
    resources:
        gpu=config["gpus_per_job"],
    params:
        dataset=get_dataset,
        layers=lambda w: neurflow_layers(w.model),
        layouts=lambda w: MODELS[w.model]["layouts"],
        settings=NEURFLOW,
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/neurflow_evaluate.py"


rule neurflow_claims:
    input:
        neurflow_files("masking.csv"),
    output:
        "results/reproduction/neurflow_claims.csv",
    log:
        "logs/neurflow_claims/neurflow_claims.log",
    conda:
        "../envs/conceptscope.yaml"
    script:
        "../scripts/neurflow_claims.py"
