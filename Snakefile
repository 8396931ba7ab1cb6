# maccabench: offline MARL with causal credit assignment, from environment interaction to tables.
# Run:  snakemake --cores 2 --config tier=quick        (tiers: smoke, quick, paper)
configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/behavior.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"


rule behavior_policies:
    input:
        expand(BEHAVIOR["summary"], env=TIER["envs"], seed=TIER["dataset_seeds"]),


rule runs:
    input:
        expand(
            run_file(layout.FINAL),
            env=TIER["envs"],
            quality=TIER["qualities"],
            algo=TIER["algos"],
            seed=TIER["train_seeds"],
        ),


# Everything the tier defines: datasets, every training run, tables, figures and the HTML report.
rule all:
    default_target: True
    input:
        rules.datasets.input,
        rules.runs.input,
        rules.report.output,
