# What the aggregate rules (aggregate.smk) compute from the config: table and figure names, their
# output files, the runs each reads. Functions only, kept apart from the rules (snakemake --lint).
import os

from maccabench.aggregate import spec as tables_spec

TABLE_NAMES = tables_spec.table_names(config)
GROUP_NAMES = {"main": "Main results", "ablation": "Ablations", "recovery": "Reward recovery",
               "anchor": "Anchor (OMAR's published numbers)", "hyperparameters": "Hyper-parameters used"}
PAPER_VALUES = "config/paper_values.yaml"


def tier_run_files():
    """Every training run of the tier: env x quality x algo x training seed; where the tier lists
    the tables it builds (tiers.<tier>.tables), only the runs those tables read, so no run is
    trained that no table reports (e.g. SMAX's random data, which no SMAX table has a row for)."""
    if "tables" not in TIER:
        return expand(run_file(layout.FINAL), env=TIER["envs"], quality=TIER["qualities"],
                      algo=TIER["algos"], seed=TIER["train_seeds"])
    return sorted({f for t in tables_spec.tables(config) for f in t.final_files()})


def table_of(name):
    return tables_spec.resolve(config, name)


def active_table(name):
    t = table_of(name)
    if not t.active:
        raise ValueError(f"\n\nTable {name} has no rows in tier {config['tier']}: {t.inactive_reason}.\n")
    return t


def table_outputs(name):
    """The table `name` in every format (a pattern for name="{table}"), by format."""
    return {fmt: layout.table_file(RESULTS, name, fmt) for fmt in layout.TABLE_FORMATS}


def figure_outputs(name):
    return {fmt: layout.figure_file(RESULTS, name, fmt) for fmt in layout.FIGURE_FORMATS}


def table_files(name):
    t = active_table(name)
    files = list(table_outputs(name).values())
    if t.paper:
        files += list(table_outputs(layout.vs_paper(name)).values())
    return files


def figure_files(group=None):
    """PNG+PDF of every figure whose runs the tier has (optionally only for one table group)."""
    figs = tables_spec.figures(config)
    files = []
    for name in figs.get("curves", []):
        t = table_of(name)
        if t.active and (group is None or t.group == group):
            files += list(figure_outputs(layout.curves_figure(name)).values())
    masks = figs.get("masks")
    if group is None and masks and masks["env"] in TIER["envs"] and masks["quality"] in TIER["qualities"]:
        files += list(figure_outputs(layout.MASKS_FIGURE).values())
    rec = figs.get("recovery")
    if rec and table_of(rec).active and (group is None or table_of(rec).group == group):
        files += list(figure_outputs(layout.RECOVERY_FIGURE).values())
    return files


def group_files(group):
    return [f for t in tables_spec.tables(config, group) for f in table_files(t.name)] + figure_files(group)


def aggregate_outputs(wildcards=None):
    """Every table and figure the tier fills (what the report shows and `all` builds)."""
    return [f for t in tables_spec.tables(config) for f in table_files(t.name)] + figure_files()


def paper_cited_as(name):
    """Which paper a table's published values come from (an entry's `cited_as`; the MACCA paper by default)."""
    import yaml

    with open(PAPER_VALUES) as f:
        return (yaml.safe_load(f).get(table_of(name).paper) or {}).get("cited_as", "the MACCA paper")


def masks_runs(wildcards=None):
    m = tables_spec.figures(config)["masks"]
    return [
        layout.run_file(RESULTS, m["env"], m["quality"], m["algo"], s, layout.FINAL)
        for s in tables_spec.train_seeds(config)
    ]


def recovery_table():
    return table_of(tables_spec.figures(config)["recovery"])


def table_target(name):
    """A table and, where the tier has its runs, its learning curves."""
    curves = figure_outputs(layout.curves_figure(name)).values()
    return table_files(name) + [f for f in figure_files() if f in curves]
