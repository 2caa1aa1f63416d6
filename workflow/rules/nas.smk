# NAS, the Neuron Activation Sorter (MIT M.Eng. thesis): per layer, the layer
# summary (zero-aligned ranges x class mix), the taxonomy and neuron views;
# per model, the taxonomy counts; the claim row NAS-1.

if NAS["models"]:
    PAPERS_RUN["nas"] = ["results/reproduction/nas_claims.csv"]


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
        dataset=lambda w: DATASETS[MODELS[w.model]["dataset"]],
        dataset_id=lambda w: MODELS[w.model]["dataset"],
        split=lambda w: nas_split(w.model),
        settings=nas_settings(),
        seed=config["seed"],
    script:
        "../scripts/nas_summary.py"


rule nas_layer_views:
    input:
        summary="results/nas/{model}/{layer}/summary.h5",
        table="results/nas/{model}/{layer}/taxonomy.csv",
        manifest=lambda w: nas_manifest(w.model),
    output:
        png=report(
            "results/figures/nas/fig3-1_{model}_{layer}_summary.png",
            caption="../report/nas_summary.rst",
            category="NAS",
        ),
        html="results/nas/{model}/{layer}/summary.html",
        neurons=directory("results/figures/nas/fig3-2_{model}_{layer}_neurons"),
    log:
        "logs/nas_layer_views/{model}_{layer}.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        dataset=lambda w: DATASETS[MODELS[w.model]["dataset"]],
        dataset_id=lambda w: MODELS[w.model]["dataset"],
        split=lambda w: nas_split(w.model),
        max_rows=NAS["max_rows"],
        thresholds=NAS["width_thresholds"],
        per_type=NAS["neurons_per_type"],
        max_per_range=NAS["max_per_range"],
    script:
        "../scripts/nas_layer_views.py"


rule nas_taxonomy:
    input:
        summaries=lambda w: nas_files(w.model, "summary.h5"),
        tables=lambda w: nas_files(w.model, "taxonomy.csv"),
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
        layers=lambda w: nas_layers(w.model),
    script:
        "../scripts/nas_taxonomy.py"


rule nas_claims:
    input:
        expand("results/figures/nas/taxonomy_{model}_counts.csv", model=NAS["models"]),
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
