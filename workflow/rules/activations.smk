# One forward pass per (model, split) writes one HDF5 file per probed layer.
# Each layer file is its own target, so the layer list (which differs per
# model) is part of the output: one rule per model.


for _model in MODELS:

    rule:
        name:
            f"cache_activations_{_model}"
        input:
            weights=f"results/models/{_model}/weights.pt",
            manifest=f"results/data/{MODELS[_model]['dataset']}/{{split}}.csv",
        output:
            activation_files(_model),
        log:
            f"logs/cache_activations/{_model}_{{split}}.log",
        benchmark:
            f"results/benchmarks/cache_activations/{_model}_{{split}}.tsv"
        conda:
            "../envs/conceptscope.yaml"
        threads: config["threads_per_job"]
        resources:
            **GPU_RESOURCES,
        params:
            model_id=_model,
            split=lambda w: w.split,
            dataset=dataset_param(_model),
            layers=MODELS[_model]["layers"],
            full_maps=lambda w, m=_model: full_maps(m, w.split),
            batch_size=MODELS[_model]["batch_size"],
            layouts=MODELS[_model]["layouts"],
            device=config["device"],
            seed=config["seed"],
        script:
            "../scripts/cache_activations.py"
