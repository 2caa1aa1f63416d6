# Coupled NMF concept analysis (Saini, Papalexakis): pixels and layer
# activations factored into shared latent concepts; Fig. 2-6, Table 1, claims.

if NMF["models"]:
    PAPERS_RUN["nmf"] = ["results/reproduction/nmf_claims.csv"]


rule fit_coupled_nmf:
    input:
        weights="results/models/{model}/weights.pt",
        caches=lambda w: nmf_caches(w.model),
        manifest=lambda w: f"results/data/{MODELS[w.model]['dataset']}/{NMF['split']}.csv",
    output:
        result="results/nmf/{model}/coupled.pt",
        losses="results/nmf/{model}/coupled_losses.csv",
    log:
        "logs/fit_coupled_nmf/{model}.log",
    benchmark:
        "results/benchmarks/fit_coupled_nmf/{model}.tsv"
    conda:
        "../envs/conceptscope.yaml"
    threads: config["threads_per_job"]
    resources:
        gpu=config["gpus_per_job"],
    params:
        dataset=lambda w: DATASETS[MODELS[w.model]["dataset"]],
        dataset_id=lambda w: MODELS[w.model]["dataset"],
        split=NMF["split"],
        settings=nmf_settings(),
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/fit_coupled_nmf.py"


rule fit_single_nmf:
    input:
        cache=f"results/activations/{{model}}/{NMF['split']}/{{layer}}.h5",
    output:
        "results/nmf/{model}/single/{layer}.pt",
    log:
        "logs/fit_single_nmf/{model}_{layer}.log",
    conda:
        "../envs/conceptscope.yaml"
    threads: config["threads_per_job"]
    resources:
        gpu=config["gpus_per_job"],
    params:
        settings=nmf_settings(),
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/fit_single_nmf.py"


rule nmf_figures:
    input:
        coupled="results/nmf/{model}/coupled.pt",
        singles=lambda w: [
            f"results/nmf/{w.model}/single/{l}.pt" for l in nmf_layers(w.model)
        ],
        manifest=lambda w: f"results/data/{MODELS[w.model]['dataset']}/{NMF['split']}.csv",
    output:
        fig2="results/figures/nmf/fig2_{model}_similarity.png",
        fig3_csv="results/figures/nmf/fig3_{model}_eigen.csv",
        fig3_png="results/figures/nmf/fig3_{model}_eigen.png",
        table1_csv="results/figures/nmf/table1_{model}_factors.csv",
        table1_png="results/figures/nmf/table1_{model}_factors.png",
        fig4="results/figures/nmf/fig4_{model}_masks_neighbours.png",
        fig5="results/figures/nmf/fig5_{model}_accuracy_impurity.png",
    log:
        "logs/nmf_figures/{model}.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        model_id=lambda w: w.model,
        dataset=lambda w: DATASETS[MODELS[w.model]["dataset"]],
        dataset_id=lambda w: MODELS[w.model]["dataset"],
        split=NMF["split"],
        eigen_k=lambda w: NMF["eigen_k"].get(w.model, 3),
        knn=NMF["knn"],
        per_factor=NMF["per_factor"],
    script:
        "../scripts/nmf_figures.py"


rule nmf_tcav:
    input:
        weights="results/models/{model}/weights.pt",
        coupled="results/nmf/{model}/coupled.pt",
        manifest=lambda w: f"results/data/{MODELS[w.model]['dataset']}/{NMF['split']}.csv",
    output:
        csv="results/figures/nmf/fig6_{model}_tcav.csv",
        png="results/figures/nmf/fig6_{model}_tcav.png",
    log:
        "logs/nmf_tcav/{model}.log",
    conda:
        "../envs/conceptscope.yaml"
    threads: config["threads_per_job"]
    params:
        dataset=lambda w: DATASETS[MODELS[w.model]["dataset"]],
        dataset_id=lambda w: MODELS[w.model]["dataset"],
        split=NMF["split"],
        factors=NMF["tcav"]["factors"],
        concept_size=NMF["tcav"]["concept_size"],
        classes=NMF["tcav"]["classes"],
        n_random=NMF["tcav"]["n_random"],
        n_random_sets=NMF["tcav"]["n_random_sets"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/nmf_tcav.py"


rule nmf_claims:
    input:
        fig3=expand("results/figures/nmf/fig3_{model}_eigen.csv", model=NMF["models"]),
    output:
        "results/reproduction/nmf_claims.csv",
    log:
        "logs/nmf_claims/nmf_claims.log",
    conda:
        "../envs/conceptscope.yaml"
    script:
        "../scripts/nmf_claims.py"


rule nmf_group_sparse:
    input:
        weights="results/models/{model}/weights.pt",
        caches=lambda w: nmf_caches(w.model),
        manifest=lambda w: f"results/data/{MODELS[w.model]['dataset']}/{NMF['split']}.csv",
    output:
        "results/figures/nmf/table2_{model}_group_sparse.csv",
    log:
        "logs/nmf_group_sparse/{model}.log",
    conda:
        "../envs/conceptscope.yaml"
    threads: config["threads_per_job"]
    params:
        dataset=lambda w: DATASETS[MODELS[w.model]["dataset"]],
        dataset_id=lambda w: MODELS[w.model]["dataset"],
        split=NMF["split"],
        settings=nmf_settings(),
        lam_group=NMF["lam_group"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/nmf_group_sparse.py"
