# NeurFlow (Cao et al., ICLR 2025): per class, the circuit from the logit down
# through the probed blocks (JSON, Fig. 7-style figure, HTML view, labelling
# export), the masking and debugging evaluations; per (model, layer) and per
# model the paper's evaluations of core sets (Fig. 4-6, 10-12, 16-18, Tables
# 3-5; neurflow.evaluation), and the claim rows NF-1 ... NF-12.
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
        **GPU_RESOURCES,
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
        **GPU_RESOURCES,
    params:
        dataset=get_dataset,
        layers=lambda w: neurflow_layers(w.model),
        layouts=lambda w: MODELS[w.model]["layouts"],
        settings=NEURFLOW,
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/neurflow_evaluate.py"


rule neurflow_attribution:
    input:
        weights="results/models/{model}/weights.pt",
        circuits=lambda w: neurflow_model_files(w.model, "circuit.json"),
        arrays=lambda w: neurflow_model_files(w.model, "levels.pt"),
        manifest=lambda w: neurflow_manifest(w.model),
    output:
        scores="results/neurflow/{model}/evaluation/{layer}/scores.pt",
        timing="results/neurflow/{model}/evaluation/{layer}/timing.csv",
        overlaps="results/neurflow/{model}/evaluation/{layer}/overlaps.csv",
        k_ablation="results/neurflow/{model}/evaluation/{layer}/k_ablation.csv",
    log:
        "logs/neurflow_attribution/{model}_{layer}.log",
    benchmark:
        "results/benchmarks/neurflow_attribution/{model}_{layer}.tsv"
    conda:
        "../envs/conceptscope.yaml"
    threads: config["threads_per_job"]
    resources:
        **GPU_RESOURCES,
    params:
        model_id=lambda w: w.model,
        dataset=get_dataset,
        layer=lambda w: w.layer,
        layers=lambda w: neurflow_layers(w.model),
        layouts=lambda w: MODELS[w.model]["layouts"],
        settings=NEURFLOW,
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/neurflow_attribution.py"


rule neurflow_knockout:
    input:
        weights="results/models/{model}/weights.pt",
        circuits=lambda w: neurflow_model_files(w.model, "circuit.json"),
        arrays=lambda w: neurflow_model_files(w.model, "levels.pt"),
        scores=rules.neurflow_attribution.output.scores,
        manifest=lambda w: neurflow_manifest(w.model),
    output:
        optimality_csv="results/figures/neurflow/fig4_{model}_{layer}_optimality.csv",
        optimality_png=report(
            "results/figures/neurflow/fig4_{model}_{layer}_optimality.png",
            caption="../report/neurflow_fig4.rst",
            category="NeurFlow",
        ),
        correlation_csv="results/figures/neurflow/fig6_{model}_{layer}_correlation.csv",
        correlation_png=report(
            "results/figures/neurflow/fig6_{model}_{layer}_correlation.png",
            caption="../report/neurflow_fig6.rst",
            category="NeurFlow",
        ),
        methods_csv="results/figures/neurflow/fig11_{model}_{layer}_methods.csv",
        methods_png=report(
            "results/figures/neurflow/fig11_{model}_{layer}_methods.png",
            caption="../report/neurflow_fig11.rst",
            category="NeurFlow",
        ),
        sum_mean_csv="results/figures/neurflow/fig12_{model}_{layer}_sum_mean.csv",
        sum_mean_png=report(
            "results/figures/neurflow/fig12_{model}_{layer}_sum_mean.png",
            caption="../report/neurflow_fig12.rst",
            category="NeurFlow",
        ),
    log:
        "logs/neurflow_knockout/{model}_{layer}.log",
    benchmark:
        "results/benchmarks/neurflow_knockout/{model}_{layer}.tsv"
    conda:
        "../envs/conceptscope.yaml"
    threads: config["threads_per_job"]
    resources:
        **GPU_RESOURCES,
    params:
        model_id=lambda w: w.model,
        dataset=get_dataset,
        layer=lambda w: w.layer,
        layers=lambda w: neurflow_layers(w.model),
        layouts=lambda w: MODELS[w.model]["layouts"],
        settings=NEURFLOW,
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/neurflow_knockout.py"


rule neurflow_fidelity:
    input:
        weights="results/models/{model}/weights.pt",
        circuits=lambda w: neurflow_model_files(w.model, "circuit.json"),
        arrays=lambda w: neurflow_model_files(w.model, "levels.pt"),
        manifest=lambda w: neurflow_manifest(w.model),
    output:
        fig5_csv="results/figures/neurflow/fig5_{model}_fidelity.csv",
        fig5_png=report(
            "results/figures/neurflow/fig5_{model}_fidelity.png",
            caption="../report/neurflow_fig5.rst",
            category="NeurFlow",
        ),
        fig16_csv="results/figures/neurflow/fig16_{model}_tau.csv",
        fig16_png=report(
            "results/figures/neurflow/fig16_{model}_tau.png",
            caption="../report/neurflow_fig16.rst",
            category="NeurFlow",
        ),
        fig17_csv="results/figures/neurflow/fig17_{model}_extended.csv",
        fig17_png=report(
            "results/figures/neurflow/fig17_{model}_extended.png",
            caption="../report/neurflow_fig17.rst",
            category="NeurFlow",
        ),
    log:
        "logs/neurflow_fidelity/{model}.log",
    benchmark:
        "results/benchmarks/neurflow_fidelity/{model}.tsv"
    conda:
        "../envs/conceptscope.yaml"
    threads: config["threads_per_job"]
    resources:
        **GPU_RESOURCES,
    params:
        model_id=lambda w: w.model,
        dataset=get_dataset,
        layers=lambda w: neurflow_layers(w.model),
        layouts=lambda w: MODELS[w.model]["layouts"],
        settings=NEURFLOW,
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/neurflow_fidelity.py"


rule neurflow_l2:
    input:
        weights="results/models/{model}/weights.pt",
        circuits=lambda w: neurflow_model_files(w.model, "circuit.json"),
        arrays=lambda w: neurflow_model_files(w.model, "levels.pt"),
        manifest=lambda w: neurflow_manifest(w.model),
    output:
        csv="results/figures/neurflow/table4_{model}_l2.csv",
        png=report(
            "results/figures/neurflow/table4_{model}_l2.png",
            caption="../report/neurflow_table4.rst",
            category="NeurFlow",
        ),
    log:
        "logs/neurflow_l2/{model}.log",
    conda:
        "../envs/conceptscope.yaml"
    threads: config["threads_per_job"]
    resources:
        **GPU_RESOURCES,
    params:
        model_id=lambda w: w.model,
        dataset=get_dataset,
        blocks=lambda w: neurflow_l2_blocks(w.model),
        settings=NEURFLOW,
        device=config["device"],
    script:
        "../scripts/neurflow_l2.py"


rule neurflow_crops:
    input:
        weights="results/models/{model}/weights.pt",
        circuits=lambda w: neurflow_model_files(w.model, "circuit.json"),
        arrays=lambda w: neurflow_model_files(w.model, "levels.pt"),
        manifest=lambda w: neurflow_manifest(w.model),
    output:
        csv="results/figures/neurflow/fig18_{model}_crops.csv",
        png=report(
            "results/figures/neurflow/fig18_{model}_crops.png",
            caption="../report/neurflow_fig18.rst",
            category="NeurFlow",
        ),
    log:
        "logs/neurflow_crops/{model}.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        model_id=lambda w: w.model,
        dataset=get_dataset,
        layers=lambda w: neurflow_layers(w.model),
        layouts=lambda w: MODELS[w.model]["layouts"],
        settings=NEURFLOW,
        device=config["device"],
    script:
        "../scripts/neurflow_crops.py"


rule neurflow_tables:
    input:
        timing=lambda w: neurflow_level_files(w.model, "timing.csv"),
        overlaps=lambda w: neurflow_level_files(w.model, "overlaps.csv"),
        k_ablation=lambda w: neurflow_level_files(w.model, "k_ablation.csv"),
    output:
        fig10_csv="results/figures/neurflow/fig10_{model}_timing.csv",
        fig10_png=report(
            "results/figures/neurflow/fig10_{model}_timing.png",
            caption="../report/neurflow_fig10.rst",
            category="NeurFlow",
        ),
        table3_csv="results/figures/neurflow/table3_{model}_overlaps.csv",
        table3_png=report(
            "results/figures/neurflow/table3_{model}_overlaps.png",
            caption="../report/neurflow_table3.rst",
            category="NeurFlow",
        ),
        table5_csv="results/figures/neurflow/table5_{model}_k_ablation.csv",
        table5_png=report(
            "results/figures/neurflow/table5_{model}_k_ablation.png",
            caption="../report/neurflow_table5.rst",
            category="NeurFlow",
        ),
    log:
        "logs/neurflow_tables/{model}.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        model_id=lambda w: w.model,
    script:
        "../scripts/neurflow_tables.py"


rule neurflow_claims:
    input:
        masking=neurflow_files("masking.csv"),
        optimality=neurflow_evaluation_tables("optimality"),
        methods=neurflow_evaluation_tables("methods"),
        fidelity=neurflow_evaluation_tables("fidelity"),
        timing=neurflow_evaluation_tables("timing"),
        overlaps=neurflow_evaluation_tables("overlaps"),
        l2=neurflow_evaluation_tables("l2"),
        k_ablation=neurflow_evaluation_tables("k_ablation"),
        crops=neurflow_evaluation_tables("crops"),
    output:
        rows="results/reproduction/neurflow_claims.csv",
    log:
        "logs/neurflow_claims/neurflow_claims.log",
    conda:
        "../envs/conceptscope.yaml"
    script:
        "../scripts/neurflow_claims.py"
