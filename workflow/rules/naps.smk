# Neural Activation Patterns (Bäuerle, Jönsson, Ropinski): per-layer NAPs from
# the activation cache, the paper's figures, and the claim rows NAP-1 to NAP-5.
# Jobs: conceptscope.naps.jobs; each rule passes the naps section (the clustering
# rules only the keys they read, so that a gallery or claim key reruns no HDBSCAN).

if NAPS["models"]:
    PAPERS_RUN["naps"] = ["results/reproduction/naps_claims.csv"]

# NAP-3: the models of naps.accuracy_pairs, each once, in order
NAP3_MODELS = list(dict.fromkeys(m for pair in NAPS["accuracy_pairs"] for m in pair))


rule extract_naps:
    input:
        cache="results/activations/{model}/{split}/{layer}.h5",
    output:
        expand(
            "results/naps/{{model}}/{{split}}/{{layer}}/{method}.h5",
            method=NAP_METHODS,
        ),
    log:
        "logs/extract_naps/{model}_{split}_{layer}.log",
    benchmark:
        "results/benchmarks/extract_naps/{model}_{split}_{layer}.tsv"
    conda:
        "../envs/conceptscope.yaml"
    threads: config["threads_per_job"]
    resources:
        **GPU_RESOURCES,
    params:
        settings=NAP_CLUSTERING,
        device=config["device"],
    script:
        "../scripts/extract_naps.py"


rule nap_input_sizes:
    input:
        cache="results/activations/{model}/{split}/{layer}.h5",
    output:
        "results/naps/{model}/{split}/{layer}/input_sizes.csv",
    log:
        "logs/nap_input_sizes/{model}_{split}_{layer}.log",
    conda:
        "../envs/conceptscope.yaml"
    threads: config["threads_per_job"]
    params:
        settings=NAP_INPUT_SIZES,
        device=config["device"],
    script:
        "../scripts/nap_input_sizes.py"


rule fig6_disentanglement:
    input:
        lambda w: nap_files(w.model),
    output:
        csv="results/figures/naps/fig6_{model}_disentanglement.csv",
        png=report(
            "results/figures/naps/fig6_{model}_disentanglement.png",
            caption="../report/naps_fig6.rst",
            category="NAPs",
        ),
    log:
        "logs/fig6_disentanglement/{model}.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        pairs=lambda w: nap_pairs(w.model),
        layers=lambda w: MODELS[w.model]["layers"],
        settings=NAPS,
        seed=config["seed"],
    script:
        "../scripts/fig6_disentanglement.py"


rule fig8_input_size:
    input:
        lambda w: fig8_tables(w.model),
    output:
        csv="results/figures/naps/fig8_{model}_input_size.csv",
        png=report(
            "results/figures/naps/fig8_{model}_input_size.png",
            caption="../report/naps_fig8.rst",
            category="NAPs",
        ),
    log:
        "logs/fig8_input_size/{model}.log",
    conda:
        "../envs/conceptscope.yaml"
    script:
        "../scripts/fig8_input_size.py"


rule nap_claims:
    input:
        fig6=expand(rules.fig6_disentanglement.output.csv, model=NAPS["models"]),
        fig8=expand(
            rules.fig8_input_size.output.csv, model=NAPS["input_size"]["models"]
        ),
        metrics=expand(rules.train_model.output.metrics, model=NAP3_MODELS),
        weights=expand(rules.train_model.output.weights, model=NAP3_MODELS),
    output:
        "results/reproduction/naps_claims.csv",
    log:
        "logs/nap_claims/nap_claims.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        pairs=NAPS["accuracy_pairs"],
    script:
        "../scripts/nap_claims.py"


# Galleries (Fig. 1 per layer, Fig. 7, Fig. 9/10) and the browser: one job per
# model, since the layer list (part of the outputs) differs per model.
for _model in NAPS["models"]:

    rule:
        name:
            f"nap_figures_{_model}"
        input:
            naps=nap_files(_model),
            manifest=nap_manifest(_model),
        output:
            figures=[
                report(f, caption=nap_figure_caption(f), category="NAPs")
                for f in nap_figure_files(_model)
            ],
            browser=f"results/naps/{_model}/browser.html",
        log:
            f"logs/nap_figures/{_model}.log",
        conda:
            "../envs/conceptscope.yaml"
        params:
            model_id=_model,
            dataset=dataset_param(_model),
            pairs=nap_pairs(_model),
            layers=MODELS[_model]["layers"],
            settings=NAPS,
        script:
            "../scripts/nap_figures.py"


rule fig14_side_by_side:
    input:
        a=lambda w: compare_files(int(w.pair))[0],
        b=lambda w: compare_files(int(w.pair))[1],
        manifest=lambda w: compare_files(int(w.pair))[2],
    output:
        report(
            "results/figures/naps/fig14_pair{pair}_side_by_side.png",
            caption="../report/naps_fig14.rst",
            category="NAPs",
        ),
    log:
        "logs/fig14_side_by_side/pair{pair}.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        dataset=lambda w: dataset_param(NAPS["compare"][int(w.pair)][0]),
        settings=NAPS,
    script:
        "../scripts/fig14_side_by_side.py"


rule nap_paper_comparison:
    input:
        expand(rules.fig6_disentanglement.output.csv, model=list(NAPS["reference"])),
    output:
        "results/figures/naps/fig6_paper_comparison.csv",
    log:
        "logs/nap_paper_comparison/nap_paper_comparison.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        settings=NAPS,
    script:
        "../scripts/nap_paper_comparison.py"
