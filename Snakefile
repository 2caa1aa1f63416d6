# conceptscope: activation-based concept discovery (NAPs, coupled NMF, NAS,
# NeurFlow) reproduced as one DAG of cached per-layer targets.


from snakemake.utils import min_version

min_version("9.0")


# The embedded default suite, unless --configfile names another suite: that
# file then replaces it whole (Snakemake would otherwise merge the two).
if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/activations.smk"
include: "workflow/rules/naps.smk"
include: "workflow/rules/nmf.smk"
include: "workflow/rules/nas.smk"
include: "workflow/rules/neurflow.smk"
include: "workflow/rules/atlas.smk"
include: "workflow/rules/reproduce.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
