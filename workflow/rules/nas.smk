# NAS, the Neuron Activation Sorter (MIT M.Eng. thesis): per layer, the layer
# summary (zero-aligned ranges x class mix), the taxonomy and neuron views;
# per model, the taxonomy counts; the claim row NAS-1.


rule nas_summary:
    input:
        cache=lambda w: nas_cache(w.model, w.layer),
        manifest=lambda w: nas_manifest(w.model),
    output:
        summary="results/nas/{model}/{layer}/summary.h5",
        table="results/nas/{model}/{layer}/taxonomy.csv",
    log:
        "logs/nas_summary/{model}_{layer}.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        dataset=get_dataset,
        split=lambda w: nas_split(w.model),
        settings=NAS,
        seed=config["seed"],
    script:
        "../scripts/nas_summary.py"


rule nas_layer_views:
    input:
        summary=rules.nas_summary.output.summary,
        table=rules.nas_summary.output.table,
        manifest=lambda w: nas_manifest(w.model),
    output:
        png=report(
            "results/figures/nas/fig3-1_{model}_{layer}_summary.png",
            caption="../report/nas_summary.rst",
            category="NAS",
        ),
        html="results/nas/{model}/{layer}/summary.html",
        neurons=report(
            directory("results/figures/nas/fig3-2_{model}_{layer}_neurons"),
            patterns=["{unit}.png"],
            caption="../report/nas_neurons.rst",
            category="NAS",
        ),
    log:
        "logs/nas_layer_views/{model}_{layer}.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        dataset=get_dataset,
        split=lambda w: nas_split(w.model),
        settings=NAS,
    script:
        "../scripts/nas_layer_views.py"


rule nas_taxonomy:
    input:
        summaries=lambda w: nas_files(rules.nas_summary.output.summary, w.model),
        tables=lambda w: nas_files(rules.nas_summary.output.table, w.model),
    output:
        csv="results/figures/nas/taxonomy_{model}_counts.csv",
        png=report(
            "results/figures/nas/taxonomy_{model}_counts.png",
            caption="../report/nas_taxonomy.rst",
            category="NAS",
        ),
    log:
        "logs/nas_taxonomy/{model}.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        model_id=lambda w: w.model,
        layers=lambda w: nas_layers(w.model),
    script:
        "../scripts/nas_taxonomy.py"


rule nas_claims:
    input:
        expand(rules.nas_taxonomy.output.csv, model=NAS["models"]),
    output:
        "results/reproduction/nas_claims.csv",
    log:
        "logs/nas_claims/nas_claims.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        expected={m: nas_layers(m) for m in NAS["models"]},
    script:
        "../scripts/nas_claims.py"


if NAS["models"]:
    PAPERS_RUN["nas"] = list(rules.nas_claims.output)
