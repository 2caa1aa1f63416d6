"""Rules nap_figures_{model}: NAP galleries (Fig. 1 per layer, Fig. 7, Fig. 9/10) and the model's NAP browser."""

from conceptscope import jobs
from conceptscope.workflow import configure_logging


def main(smk) -> None:
    configure_logging(smk.log[0])
    p = dict(smk.params.items())
    jobs.nap_figures(
        **{
            k: p[k]
            for k in (
                "model_id",
                "dataset",
                "dataset_id",
                "split",
                "layers",
                "methods",
                "gallery_method",
                "fig7_layer",
                "follow_images",
                "top_naps",
                "per_nap",
            )
        },
        manifest=smk.input.manifest,
        files={tuple(pair): path for pair, path in zip(p["pairs"], smk.input.naps, strict=True)},
        figures=list(smk.output.figures),
        browser=smk.output.browser,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 - injected by Snakemake's script directive
