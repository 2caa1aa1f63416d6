"""Rule neurflow_evaluate: masking.csv and fig9 (group vs random neurons), debugging_metric.csv (metric M)."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging, set_threads


def main(smk) -> None:
    configure_logging(smk.log[0])
    set_threads(smk.threads)
    p = smk.params
    jobs.neurflow_evaluate(
        circuit=smk.input.circuit,
        arrays=smk.input.arrays,
        weights=smk.input.weights,
        caches=dict(zip(p.layers, smk.input.caches, strict=True)),
        dataset=p.dataset,
        dataset_id=p.dataset_id,
        manifest=smk.input.manifest,
        n_random=p.n_random,
        debug_images=p.debug_images,
        seed=p.seed,
        device=p.device,
        masking=smk.output.masking,
        debug=smk.output.debug,
        png=smk.output.png,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
