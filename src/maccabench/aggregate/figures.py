"""Figures from run folders (seaborn), each saved as PNG and PDF:

- learning curves of a table's runs (evaluation score over training, 95% bootstrap band over seeds;
  for ablation tables also the mask densities and the causal-model loss),
- Figure 4: heat-maps of the learned s->r and a->r mask probabilities per agent (masks.npz),
- reward recovery: each MACCA run's correlation with the hidden individual rewards against its score.

Runs whose normalised score is undefined (the references within noise: runfolder.SCORE_UNDEFINED)
are not drawn; a panel left empty by them says UNDEFINED, and a footnote names the env/quality.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed (CI, clusters)
import matplotlib.lines  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .. import layout, runfolder  # noqa: E402
from ..errors import MaccabenchError  # noqa: E402
from ..io import atomic_path  # noqa: E402
from . import stats  # noqa: E402
from .runs import MEASURE_COLUMNS, RunError, load_run, load_table_runs  # noqa: E402
from .spec import RunKey, Table  # noqa: E402
from .tables import MEASURE_NAMES, METRIC_NAMES, UNDEFINED  # noqa: E402

DPI = 110
BAND_REPS = 1000    # bootstrap replicates of the 95% band of a learning curve


def save(fig, png: str | Path) -> list[Path]:
    """Writes <png> and the same figure as .pdf next to it, each atomically."""
    png = Path(png)
    out = []
    for path, fmt in ((png, "png"), (png.with_suffix(".pdf"), "pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=DPI, bbox_inches="tight")
        out.append(path)
    plt.close(fig)
    return out


def mean_band(df: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """Mean over seeds of `value` per group, with the 95% percentile bootstrap interval of that mean
    (the same code as the tables' intervals; seaborn's own bootstrap loops in Python, 100x slower)."""
    rows = []
    for keys, g in df.dropna(subset=[value]).groupby(by, sort=False):
        m, lo, hi = stats.bootstrap_ci(g[value].to_numpy(), "mean", reps=BAND_REPS, seed=0)
        rows.append(dict(zip(by, keys if isinstance(keys, tuple) else (keys,)), mean=m, low=lo, high=hi))
    return pd.DataFrame(rows, columns=[*by, "mean", "low", "high"])   # the columns even where nothing has a value


def _lines_with_band(data: pd.DataFrame, *, hue: str, order: list[str], palette: dict, **_):
    ax = plt.gca()
    for name in order:
        d = data[data[hue] == name].sort_values("loop_steps")
        if d.empty:
            continue
        ax.plot(d["loop_steps"], d["mean"], color=palette[name], lw=1.2, label=name)
        ax.fill_between(d["loop_steps"], d["low"], d["high"], color=palette[name], alpha=0.2, lw=0)


def _grid(band: pd.DataFrame, hue: str, order: list[str], **facet) -> sns.FacetGrid:
    palette = dict(zip(order, sns.color_palette("tab10", len(order))))
    g = sns.FacetGrid(band, sharey=False, despine=True, **facet)
    g.map_dataframe(_lines_with_band, hue=hue, order=order, palette=palette)
    handles = [matplotlib.lines.Line2D([], [], color=palette[n], lw=1.5) for n in order]
    g.figure.legend(handles, order, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, title=hue)
    return g


def _undefined_cells(table: Table, runs: dict) -> list[tuple[str, str]]:
    """(env label, quality label) of the runs whose score is undefined, in table order."""
    return list(dict.fromkeys((table.label(k.env), table.label(k.quality)) for k, r in runs.items() if r.score_undefined))


def _undefined_footnote(fig, table: Table, runs: dict, what: str) -> None:
    cells = _undefined_cells(table, runs)
    if cells:
        fig.text(0.0, -0.02, f"{UNDEFINED}: normalised score undefined for {', '.join(f'{e} {q}' for e, q in cells)} (the "
                             f"behaviour learner's expert is not clearly better than its random policy; see the tables' "
                             f"notes): {what}", fontsize=7, va="top", ha="left", wrap=True)


def _curve_frame(table: Table, runs: dict) -> pd.DataFrame:
    frames = []
    for key, run in runs.items():
        m = run.metrics.copy()
        if run.score_undefined:   # not drawn (metrics.csv of an older run may still hold numbers)
            m[runfolder.METRIC_COLUMNS[run.metric]] = np.nan
        m["env"], m["quality"], m["algo"], m["seed"] = table.label(key.env), table.label(key.quality), key.algo, key.seed
        frames.append(m)
    return pd.concat(frames, ignore_index=True)


def curves(table: Table, png: str | Path) -> list[Path]:
    """Learning curves of the runs a table reads: mean over seeds, 95% bootstrap band."""
    runs, missing = load_table_runs(table)
    if not runs:
        raise MaccabenchError(f"table {table.name}: no finished runs to plot")
    df = _curve_frame(table, runs)
    score_col = f"eval/{table.metric}"
    ylabel = METRIC_NAMES.get(table.metric, table.metric)
    sns.set_theme(style="whitegrid", context="paper")
    if table.kind in ("scores", "recovery"):
        df["algorithm"] = df["algo"].map(table.label)
        band = mean_band(df, ["env", "quality", "algorithm", "loop_steps"], score_col)
        g = _grid(band, "algorithm", [table.label(a) for a in table.algos], row="env", col="quality",
                  height=2.0, aspect=1.35, margin_titles=True,
                  row_order=list(dict.fromkeys(table.label(e) for e, _ in table.rows)),
                  col_order=list(dict.fromkeys(table.label(q) for _, q in table.rows)))
        g.set_axis_labels("loop steps (updates x 100)", ylabel)
        for cell in _undefined_cells(table, runs):
            _mark_empty(g.axes_dict.get(cell))
        title = f"{table.title}: learning curves (tier {table.tier}, {len(table.seeds)} seed(s), band: 95% CI)"
    else:
        label_of = {algo: label for label, algo in reversed(table.rows)}   # an algo may serve several rows
        wanted = ["score"] + [m for m in ([table.density] if table.density else []) + table.measures if m != "score"]
        parts = []
        for measure in dict.fromkeys(wanted):
            col = score_col if measure == "score" else MEASURE_COLUMNS[measure]
            if col not in df:
                continue
            part = df[["loop_steps", "algo", "seed", col]].rename(columns={col: "value"})
            part["measure"] = ylabel if measure == "score" else MEASURE_NAMES[measure]
            parts.append(part)
        data = pd.concat(parts, ignore_index=True)
        data[table.parameter] = data["algo"].map(label_of)
        band = mean_band(data, ["measure", table.parameter, "loop_steps"], "value")
        g = _grid(band, table.parameter, [label for label, _ in table.rows], col="measure", height=2.6, aspect=1.2,
                  col_order=list(dict.fromkeys(data["measure"])))   # a panel even where no run has a score
        g.set_axis_labels("loop steps (updates x 100)", "")
        g.set_titles("{col_name}")
        if _undefined_cells(table, runs):
            _mark_empty(g.axes_dict.get(ylabel))
        title = (f"{table.title}: {table.label(table.env)} {table.quality} (tier {table.tier}, "
                 f"{len(table.seeds)} seed(s), band: 95% CI)")
    if missing:
        title = f"PARTIAL ({len(missing)} runs missing) " + title
    g.figure.suptitle(title, y=1.02, fontsize=9)
    _undefined_footnote(g.figure, table, runs, "their score curves are not drawn")
    return save(g.figure, png)


def _mark_empty(ax) -> None:
    """UNDEFINED in the middle of a panel that has no curve because no run of it has a score."""
    if ax is not None and not ax.lines:
        ax.text(0.5, 0.5, UNDEFINED, transform=ax.transAxes, ha="center", va="center", fontsize=9, color="0.4")


def masks_figure(results: str | Path, tier: str, env: str, quality: str, algo: str, seeds: list[int],
                 png: str | Path, snapshots: int = 3, labels: dict | None = None) -> list[Path]:
    """Figure 4: mean (over seeds) mask probabilities of s->r and a->r per agent, at `snapshots`
    points from the first to the last snapshot."""
    labels = labels or {}
    loaded = []
    for s in seeds:
        key = RunKey(env, quality, algo, s)
        if not key.file(results, layout.FINAL).exists():
            raise RunError(key.file(results, layout.FINAL), "is missing (Figure 4 reads this run)",
                           f"run it first, e.g. `snakemake --cores 2 figures --config tier={tier}`")
        loaded.append(load_run(results, key, tier).masks())
    k = min(len(m["updates"]) for m in loaded)
    shapes = {(m["s_to_r"].shape[1:], m["a_to_r"].shape[1:]) for m in loaded}
    if len(shapes) != 1:
        raise MaccabenchError(f"Figure 4: runs of {env}/{quality}/{algo} have different mask shapes {shapes}")
    picks = sorted(set(np.linspace(0, k - 1, min(snapshots, k)).round().astype(int).tolist()))
    s_to_r = np.mean([m["s_to_r"][:k] for m in loaded], axis=0)     # [K, N, S]
    a_to_r = np.mean([m["a_to_r"][:k] for m in loaded], axis=0)     # [K, N, N*A]
    updates = loaded[0]["updates"][:k]
    n, S = s_to_r.shape[1:]
    NA = a_to_r.shape[2]
    sns.set_theme(style="white", context="paper")
    fig, axes = plt.subplots(len(picks), 2, figsize=(11, 1.0 + 1.1 * n * len(picks) / 3 + 0.6 * len(picks)),
                             gridspec_kw={"width_ratios": [max(S, 1), max(3 * NA, 12)]}, squeeze=False)
    cmap = "YlGnBu"  # the paper's colours: yellow = low probability, blue = high
    for row, i in enumerate(picks):
        for col, (mat, dims, name) in enumerate(((s_to_r[i], S, "s→r (joint state)"), (a_to_r[i], NA, "a→r (joint action)"))):
            ax = axes[row, col]
            sns.heatmap(mat, ax=ax, vmin=0, vmax=1, cmap=cmap, cbar=col == 1, square=False,
                        yticklabels=[f"agent {j}" for j in range(n)], xticklabels=max(1, dims // 12))
            for b in range(1, n):   # block borders: each agent's part of the joint vector
                if dims % n == 0:
                    ax.axvline(b * dims // n, color="k", lw=0.6)
            ax.set_title(f"{name}, update {int(updates[i])}", fontsize=8)
            ax.tick_params(labelsize=6)
    fig.suptitle(f"Figure 4: learned mask probabilities, {labels.get(algo, algo)} on {labels.get(env, env)} {quality} "
                 f"(mean over seeds {', '.join(map(str, seeds))}; tier {tier})", fontsize=9)
    fig.tight_layout()
    return save(fig, png)


def recovery_scatter(table: Table, png: str | Path) -> list[Path]:
    """Per run: correlation of r_hat with the hidden individual reward (x) vs the run's score (y)."""
    runs, missing = load_table_runs(table)
    if not runs:
        raise MaccabenchError(f"table {table.name}: no finished runs to plot")
    rows = [{"Pearson r (mean over agents)": np.nan if r.recovery["pearson"]["mean"] is None else float(r.recovery["pearson"]["mean"]),
             "score": r.score,
             "env": table.label(k.env), "quality": k.quality, "algorithm": table.label(k.algo)}
            for k, r in runs.items()]
    df = pd.DataFrame(rows)
    sns.set_theme(style="whitegrid", context="paper")
    ylabel = " / ".join(METRIC_NAMES.get(m, m) for m in sorted({r.metric for r in runs.values()}))
    col_order = [table.label(a) for a in table.algos]
    if df["score"].notna().any():
        g = sns.relplot(data=df, x="Pearson r (mean over agents)", y="score", hue="env", style="quality",
                        col="algorithm", height=2.8, aspect=1.0, s=40, col_order=col_order)
    else:   # no run has a score to place on the y axis (seaborn cannot draw an all-nan column)
        g = sns.FacetGrid(df, col="algorithm", col_order=col_order, height=2.8, aspect=1.0)
        for ax in g.axes.flat:
            _mark_empty(ax)
    g.set(xlim=(-1.05, 1.05))
    g.set_axis_labels("Pearson r (mean over agents)", ylabel)
    title = (f"Reward recovery vs score, one point per run (tier {table.tier}, {len(table.seeds)} seed(s))"
             + (f"; PARTIAL: {len(missing)} runs missing" if missing else ""))
    g.figure.suptitle(title, y=1.03, fontsize=9)
    _undefined_footnote(g.figure, table, runs, f"{sum(bool(r.score_undefined) for r in runs.values())} run(s) not plotted")
    return save(g.figure, png)
