# maccabench: offline MARL with causal credit assignment, from environment interaction to tables.
# Run:  snakemake --cores 2 --config tier=quick        (tiers: the keys of `tiers:` in the config)
import sys

sys.path.insert(0, f"{workflow.basedir}/src")
from maccabench.errors import MaccabenchError
from maccabench.yamlfile import check_files

try:  # before Snakemake's own reading, which keeps the last of two equal keys and locates no syntax error
    check_files([*workflow.configfiles, "config/config.yaml"])
except MaccabenchError as e:
    raise ValueError(f"\n\nInvalid configuration: {e}\n") from None


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
        tier_run_files(),


# Everything the tier defines: datasets, every training run, tables, figures and the HTML report.
rule all:
    default_target: True
    input:
        rules.datasets.input,
        rules.runs.input,
        rules.report.output,
