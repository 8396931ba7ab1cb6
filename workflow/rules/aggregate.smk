# Aggregation: run folders -> tables (CSV, Markdown, LaTeX, HTML), side-by-side versions with the
# paper's published values, figures (PNG + PDF) and the HTML report. What each table reads comes
# from the `tables:` section of the config and the tier (envs, qualities, train_seeds), so every
# named target (table1, table2, ablations, figures, report) asks for exactly the runs it needs.
# Errors in `tables:` (an algorithm not in `algorithms:`, ...) surface when a target needs that
# table, before any job starts. The aggregate rules are light: local (`localrules`), conda env
# envs/analysis.yaml; the report rule runs Snakemake itself, in envs/sim.yaml (the workflow's parse needs it).
include: "aggregate_common.smk"


report: "../report/workflow.rst"


wildcard_constraints:
    table="|".join(TABLE_NAMES),


localrules: aggregate_table, aggregate_vs_paper, aggregate_curves, aggregate_masks, aggregate_recovery_scatter, report


rule aggregate_table:
    input:
        lambda w: table_of(w.table).input_files(),
    output:
        csv=table_outputs("{table}")["csv"],
        md=table_outputs("{table}")["md"],
        tex=table_outputs("{table}")["tex"],
        html=report(
            table_outputs("{table}")["html"],
            caption="../report/table.rst",
            category="Tables",
            subcategory=lambda w: GROUP_NAMES[table_of(w.table).group],
            labels=lambda w: {"table": w.table, "tier": config["tier"]},
        ),
    params:
        job=lambda w: job_json(table_of(w.table).to_job()),
        caption=lambda w: table_of(w.table).caption(),
        folder=lambda w, output: os.path.dirname(output.csv),
    conda:
        "../../envs/analysis.yaml"
    log:
        layout.log(RESULTS, "aggregate", "{table}"),
    shell:
        "python -m maccabench.aggregate table --job {params.job:q} --out {params.folder} > {log} 2>&1"


rule aggregate_vs_paper:
    input:
        csv=table_outputs("{table}")["csv"],
        paper=PAPER_VALUES,
    output:
        csv=table_outputs(layout.vs_paper("{table}"))["csv"],
        md=table_outputs(layout.vs_paper("{table}"))["md"],
        tex=table_outputs(layout.vs_paper("{table}"))["tex"],
        html=report(
            table_outputs(layout.vs_paper("{table}"))["html"],
            caption="../report/table.rst",
            category="Tables vs paper",
            labels=lambda w: {"table": w.table, "tier": config["tier"]},
        ),
    params:
        job=lambda w: job_json(table_of(w.table).to_job()),
        caption=lambda w: (
            f"{table_of(w.table).title}: our numbers (tier {config['tier']}, from {w.table}.csv) beside the values "
            f"published in {paper_cited_as(w.table)}, every paper value marked (paper). The paper's numbers come from its own "
            f"datasets, references and seeds; they are shown for orientation and used nowhere else."
        ),
        folder=lambda w, output: os.path.dirname(output.csv),
    conda:
        "../../envs/analysis.yaml"
    log:
        layout.log(RESULTS, "aggregate", layout.vs_paper("{table}")),
    shell:
        "python -m maccabench.aggregate vs-paper --job {params.job:q} --csv {input.csv} --paper {input.paper} "
        "--out {params.folder} > {log} 2>&1"


rule aggregate_curves:
    input:
        lambda w: table_of(w.table).input_files(),
    output:
        png=report(
            figure_outputs(layout.curves_figure("{table}"))["png"],
            caption="../report/figure.rst",
            category="Figures",
            subcategory="Learning curves",
            labels=lambda w: {"figure": f"curves of {w.table}", "tier": config["tier"]},
        ),
        pdf=figure_outputs(layout.curves_figure("{table}"))["pdf"],
    params:
        job=lambda w: job_json(table_of(w.table).to_job()),
        caption=lambda w: (
            f"Learning curves of the runs behind {table_of(w.table).title} (tier {config['tier']}): evaluation "
            f"score against loop steps (updates x 100, the paper's counting); lines are means over the training "
            f"seeds {', '.join(map(str, table_of(w.table).seeds))}, bands 95% bootstrap confidence intervals. "
            + ("Ablation panels add the mask densities and the causal-model loss where the runs log them."
               if table_of(w.table).kind in ("sweep", "variants") else "One panel per environment and dataset quality.")
        ),
    conda:
        "../../envs/analysis.yaml"
    log:
        layout.log(RESULTS, "aggregate", layout.curves_figure("{table}")),
    shell:
        "python -m maccabench.aggregate curves --job {params.job:q} --out {output.png} > {log} 2>&1"


rule aggregate_masks:
    input:
        masks_runs,
    output:
        png=report(
            figure_outputs(layout.MASKS_FIGURE)["png"],
            caption="../report/figure.rst",
            category="Figures",
            subcategory="Figure 4: causal structure",
            labels={"figure": "Figure 4 mask heat-maps", "tier": config["tier"]},
        ),
        pdf=figure_outputs(layout.MASKS_FIGURE)["pdf"],
    params:
        job=lambda w: job_json(tables_spec.masks_job(config)),
        caption=lambda w: (
            "Figure 4: mask probabilities learned by MACCA's structure predictors, per agent (rows) over the joint "
            "state (s→r, left) and the joint action (a→r, right), averaged over a fixed probe batch and over the "
            f"training seeds, at the first, middle and last snapshot of training (tier {config['tier']}; "
            f"{tables_spec.figures(config)['masks']['algo']} on {tables_spec.figures(config)['masks']['env']} "
            f"{tables_spec.figures(config)['masks']['quality']}). Blue: high probability of a causal edge, yellow: low; "
            "black lines separate the agents' blocks."
        ),
    conda:
        "../../envs/analysis.yaml"
    log:
        layout.log(RESULTS, "aggregate", layout.MASKS_FIGURE),
    shell:
        "python -m maccabench.aggregate masks --job {params.job:q} --out {output.png} > {log} 2>&1"


rule aggregate_recovery_scatter:
    input:
        lambda w: recovery_table().input_files(),
    output:
        png=report(
            figure_outputs(layout.RECOVERY_FIGURE)["png"],
            caption="../report/figure.rst",
            category="Figures",
            subcategory="Reward recovery",
            labels={"figure": "reward recovery vs score", "tier": config["tier"]},
        ),
        pdf=figure_outputs(layout.RECOVERY_FIGURE)["pdf"],
    params:
        job=lambda w: job_json(recovery_table().to_job()),
        caption=lambda w: (
            "Reward recovery: for each MACCA run (one point per env, quality and seed), the Pearson correlation "
            "between its learned per-agent rewards and the hidden individual rewards of the raw dataset (mean over "
            f"agents, x) against the run's score (y). Tier {config['tier']}. The paper reports no such measure."
        ),
    conda:
        "../../envs/analysis.yaml"
    log:
        layout.log(RESULTS, "aggregate", layout.RECOVERY_FIGURE),
    shell:
        "python -m maccabench.aggregate recovery-scatter --job {params.job:q} --out {output.png} > {log} 2>&1"


# ---- named targets ----------------------------------------------------------------------------


rule table1:
    input:
        lambda w: table_target("table1"),


rule table2:
    input:
        lambda w: table_target("table2"),


# credit assignment learnt from the team reward (QMIX-CQL, SHAQ, SQDDPG) against MACCA-CQL
rule table5:
    input:
        lambda w: table_target("table5"),


# OMAR's baselines on CN with the hidden individual rewards, beside OMAR's published scores, and
# OMAR's network options on and off (group `anchor`)
rule anchor:
    input:
        lambda w: group_files("anchor"),


# the paper's Tables 3 and 4, regenerated from the config.yaml of the runs
rule hyperparameters:
    input:
        lambda w: group_files("hyperparameters"),


rule ablations:
    input:
        lambda w: group_files("ablation"),


rule figures:
    input:
        lambda w: figure_files(),


rule aggregate_outputs:
    input:
        aggregate_outputs,


# The HTML report: every table and figure above with its caption. It runs `snakemake --report` on
# this same workflow and config (written next to the report), for the target `aggregate_outputs`,
# in the working directory of this run (the shell's). No absolute path in the params: Snakemake
# reruns a job whose params changed, so a checkout moved or copied with its results would redo it.
rule report:
    input:
        aggregate_outputs,
    output:
        html=layout.report(RESULTS),
        config=layout.report_config(RESULTS),
    params:
        config=lambda w: json.dumps(config, sort_keys=True),
        snakefile=os.path.relpath(workflow.main_snakefile),
    conda:
        "../../envs/sim.yaml"   # `snakemake --report` parses this workflow, which imports the package
    log:
        layout.log(RESULTS, "aggregate", "report"),
    shell:
        "echo {params.config:q} > {output.config} && "
        "snakemake --snakefile {params.snakefile:q} --configfile {output.config:q} "
        "--nolock --report {output.html:q} aggregate_outputs > {log} 2>&1"
