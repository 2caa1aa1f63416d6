# The atlas: every method's concepts of a model as image sets (catalog), their
# alignment across methods per layer, planted-concept recovery (data sets of
# kind planted), concept-level faithfulness, and results/index.html.


rule atlas_concepts:
    input:
        unpack(lambda w: atlas_sources(w.model)),
    output:
        catalog="results/atlas/{model}/concepts.json",
    log:
        "logs/atlas_concepts/{model}.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        model_id=lambda w: w.model,
        settings=ATLAS,
    script:
        "../scripts/atlas_concepts.py"


rule atlas_alignment:
    input:
        catalog=rules.atlas_concepts.output.catalog,
    output:
        summary="results/figures/atlas/alignment_{model}.csv",
        figures=report(
            directory("results/figures/atlas/alignment_{model}"),
            patterns=["{name}.png"],
            caption="../report/atlas_alignment.rst",
            category="Atlas",
        ),
    log:
        "logs/atlas_alignment/{model}.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        model_id=lambda w: w.model,
        layers=lambda w: MODELS[w.model]["layers"],
        nap_method=ATLAS_NAP_METHOD,
        settings=ATLAS,
        seed=config["seed"],
    script:
        "../scripts/atlas_alignment.py"


rule atlas_recovery:
    input:
        catalog=rules.atlas_concepts.output.catalog,
        manifest=lambda w: atlas_manifests(w.model),
    output:
        csv="results/figures/atlas/recovery_{model}.csv",
        png=report(
            "results/figures/atlas/recovery_{model}.png",
            caption="../report/atlas_recovery.rst",
            category="Atlas",
        ),
    log:
        "logs/atlas_recovery/{model}.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        settings=ATLAS,
        seed=config["seed"],
    script:
        "../scripts/atlas_recovery.py"


rule atlas_faithfulness:
    input:
        unpack(lambda w: atlas_faithfulness_inputs(w.model)),
        catalog=rules.atlas_concepts.output.catalog,
    output:
        table="results/atlas/{model}/faithfulness.csv",
    log:
        "logs/atlas_faithfulness/{model}.log",
    benchmark:
        "results/benchmarks/atlas_faithfulness/{model}.tsv"
    conda:
        "../envs/conceptscope.yaml"
    threads: config["threads_per_job"]
    resources:
        **GPU_RESOURCES,
    params:
        model_id=lambda w: w.model,
        dataset=get_dataset,
        layers=lambda w: MODELS[w.model]["layers"],
        layouts=lambda w: MODELS[w.model]["layouts"],
        nap_method=ATLAS_NAP_METHOD,
        settings=ATLAS,
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/atlas_faithfulness.py"


rule atlas_faithfulness_table:
    input:
        tables=expand("results/atlas/{model}/faithfulness.csv", model=ATLAS_MODELS),
    output:
        csv="results/figures/atlas/faithfulness.csv",
        png=report(
            "results/figures/atlas/faithfulness.png",
            caption="../report/atlas_faithfulness.rst",
            category="Atlas",
        ),
    log:
        "logs/atlas_faithfulness_table/atlas_faithfulness_table.log",
    conda:
        "../envs/conceptscope.yaml"
    script:
        "../scripts/atlas_faithfulness_table.py"


rule atlas_page:
    input:
        unpack(atlas_page_inputs),
    output:
        page="results/index.html",
    log:
        "logs/atlas_page/atlas_page.log",
    conda:
        "../envs/conceptscope.yaml"
    params:
        models=atlas_page_models(),
        recovery_models=atlas_recovery_models(),
        nap_method=ATLAS_NAP_METHOD,
        settings=ATLAS,
    script:
        "../scripts/atlas_page.py"
