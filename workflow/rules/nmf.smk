# Coupled NMF concept analysis (Saini, Papalexakis): pixels and layer
# activations factored into shared latent concepts; Fig. 2-6, Tables 1-2,
# claims NMF-1 to NMF-5.
# Every rule passes the whole `nmf` section (conceptscope.nmf.settings); a
# rule's params, inputs and outputs are its job's keyword arguments.


rule fit_coupled_nmf:
    input:
        weights=rules.train_model.output.weights,
        caches=lambda w: nmf_caches(w.model),
        manifest=lambda w: nmf_manifest(w.model),
    output:
        result="results/nmf/{model}/coupled.pt",
        losses="results/nmf/{model}/coupled_losses.csv",
        residuals=report(
            "results/figures/nmf/fit_{model}_residuals.csv",
            caption="../report/nmf_residuals.rst",
            category="Coupled NMF",
        ),
    log:
        "logs/fit_coupled_nmf/{model}.log",
    benchmark:
        "results/benchmarks/fit_coupled_nmf/{model}.tsv"
    conda:
        "../envs/conceptscope.yaml"
    threads: config["threads_per_job"]
    resources:
        **GPU_RESOURCES,
    params:
        dataset=get_dataset,
        settings=NMF,
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/fit_coupled_nmf.py"


rule fit_single_nmf:
    input:
        cache=f"results/activations/{{model}}/{NMF['split']}/{{layer}}.h5",
    output:
        result="results/nmf/{model}/single/{layer}.pt",
    log:
        "logs/fit_single_nmf/{model}_{layer}.log",
    conda:
        "../envs/conceptscope.yaml"
    threads: config["threads_per_job"]
    resources:
        **GPU_RESOURCES,
    params:
        settings=NMF,
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/fit_single_nmf.py"


rule nmf_figures:
    input:
        coupled=rules.fit_coupled_nmf.output.result,
        singles=lambda w: expand(
            rules.fit_single_nmf.output.result,
            model=w.model,
            layer=nmf_layers(w.model),
        ),
        manifest=lambda w: nmf_manifest(w.model),
    output:
        fig2=report(
            "results/figures/nmf/fig2_{model}_similarity.png",
            caption="../report/nmf_fig2.rst",
            category="Coupled NMF",
        ),
        fig3_csv="results/figures/nmf/fig3_{model}_eigen.csv",
        fig3_png=report(
            "results/figures/nmf/fig3_{model}_eigen.png",
            caption="../report/nmf_fig3.rst",
            category="Coupled NMF",
        ),
        table1_csv="results/figures/nmf/table1_{model}_factors.csv",
        table1_png=report(
            "results/figures/nmf/table1_{model}_factors.png",
            caption="../report/nmf_table1.rst",
            category="Coupled NMF",
        ),
        fig4=report(
            "results/figures/nmf/fig4_{model}_masks_neighbours.png",
            caption="../report/nmf_fig4.rst",
            category="Coupled NMF",
        ),
        purity_csv="results/figures/nmf/fig4_{model}_neighbour_purity.csv",
        fig5=report(
            "results/figures/nmf/fig5_{model}_accuracy_impurity.png",
            caption="../report/nmf_fig5.rst",
            category="Coupled NMF",
        ),
        fig5_csv="results/figures/nmf/fig5_{model}_accuracy_impurity.csv",
    log:
        "logs/nmf_figures/{model}.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        model_id=lambda w: w.model,
        dataset=get_dataset,
        settings=NMF,
        seed=config["seed"],
    script:
        "../scripts/nmf_figures.py"


rule nmf_tcav:
    input:
        weights=rules.train_model.output.weights,
        coupled=rules.fit_coupled_nmf.output.result,
        manifest=lambda w: nmf_manifest(w.model),
    output:
        csv="results/figures/nmf/fig6_{model}_tcav.csv",
        png=report(
            "results/figures/nmf/fig6_{model}_tcav.png",
            caption="../report/nmf_fig6.rst",
            category="Coupled NMF",
        ),
    log:
        "logs/nmf_tcav/{model}.log",
    conda:
        "../envs/conceptscope.yaml"
    threads: config["threads_per_job"]
    params:
        dataset=get_dataset,
        settings=NMF,
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/nmf_tcav.py"


rule nmf_group_sparse:
    input:
        weights=rules.train_model.output.weights,
        caches=lambda w: nmf_caches(w.model),
        manifest=lambda w: nmf_manifest(w.model),
    output:
        csv="results/figures/nmf/table2_{model}_group_sparse.csv",
    log:
        "logs/nmf_group_sparse/{model}.log",
    conda:
        "../envs/conceptscope.yaml"
    threads: config["threads_per_job"]
    params:
        dataset=get_dataset,
        settings=NMF,
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/nmf_group_sparse.py"


rule nmf_claims:
    input:
        fig3=expand(rules.nmf_figures.output.fig3_csv, model=NMF["models"]),
        table1=expand(rules.nmf_figures.output.table1_csv, model=NMF["models"]),
        purity=expand(rules.nmf_figures.output.purity_csv, model=NMF["models"]),
        table2=expand(
            rules.nmf_group_sparse.output.csv,
            model=NMF["models"] if NMF["lam_group"] > 0 else [],
        ),
    output:
        rows="results/reproduction/nmf_claims.csv",
    log:
        "logs/nmf_claims/nmf_claims.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        settings=NMF,
    script:
        "../scripts/nmf_claims.py"


if NMF["models"]:
    PAPERS_RUN["nmf"] = list(rules.nmf_claims.output)
