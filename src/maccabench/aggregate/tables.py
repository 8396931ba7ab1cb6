"""Building a table from run folders and writing it as CSV, Markdown, LaTeX and HTML.

Every table has the same parts:
- the paper's form: mean +- sample std over seeds, the best mean per row (per column for
  variants) in bold;
- beside it the interquartile mean with a 95% stratified-bootstrap confidence interval, and the
  probability of improvement P(X > Y) for the pairs the config names (MACCA-X over X);
- a tidy CSV holding every number with the run folders it came from (`<name>.csv`);
- cells whose normalised scores are undefined (the behaviour learner's expert not clearly better
  than its random policy: runfolder.SCORE_UNDEFINED) marked UNDEFINED with a note saying which
  env/quality and why; such runs are left out of every statistic (CSV: `n_undefined`, `score_undefined`).
The side-by-side version with the paper's published values is built from that CSV and
config/paper_values.yaml (`side_by_side`), and is the only place the paper's numbers appear.
"""
from __future__ import annotations

import html as htmllib
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .. import layout
from ..hparams import QUALITIES
from ..errors import MaccabenchError
from ..io import atomic_path
from ..maskscore import KINDS as MASK_KINDS, MEASURES as MASK_MEASURES
from ..runfolder import MASK_RECOVERY
from . import stats
from .runs import Run, RunError, load_table_runs
from .spec import RunKey, Table

MEASURE_NAMES = {"score": None, "rho_sr": "rho_sr (s->r mask density)", "rho_ar": "rho_ar (a->r mask density)",
                 "causal_loss": "causal model loss"}
METRIC_NAMES = {"normalized_score": "normalised score", "win_rate": "win rate"}
MISSING = "—"
UNDEFINED = "n/a (refs)"   # normalised score undefined: S_expert not clearly above S_random


# ---- cells and formatting ----------------------------------------------------------------------

def digits(measure: str, metric: str | None) -> str:
    """Format of a measure's numbers; "sig3" = three significant digits of the mean, the std to
    the same decimal place."""
    if measure == "score":
        return ".2f" if metric == "win_rate" else ".1f"
    if measure == "causal_loss":
        return "sig3"
    return ".2f"


def fmt(x: float, spec: str) -> str:
    return MISSING if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def mean_pm_std(mean: float, std: float, spec: str) -> str:
    if math.isnan(mean):
        return MISSING
    if spec == "sig3":
        spec = f".{max(0, 2 - math.floor(math.log10(abs(mean))))}f" if mean else ".3f"
    return fmt(mean, spec) if math.isnan(std) else f"{fmt(mean, spec)} ± {fmt(std, spec)}"


def interval(point: float, lo: float, hi: float, spec: str) -> str:
    if math.isnan(point):
        return MISSING
    if spec == "sig3":
        spec = f".{max(0, 2 - math.floor(math.log10(abs(point))))}f" if point else ".3f"
    return f"{fmt(point, spec)} [{fmt(lo, spec)}, {fmt(hi, spec)}]"


@dataclass
class Cell:
    text: str
    bold: bool = False

    def render(self, how: str) -> str:
        t = self.text
        if how == "tex":
            t = tex_escape(t)
        elif how == "html":
            t = htmllib.escape(t)
        if self.bold and t not in (MISSING, UNDEFINED):
            t = {"md": f"**{t}**", "tex": rf"\textbf{{{t}}}", "html": f"<b>{t}</b>"}[how]
        return t


def tex_escape(s: str) -> str:
    out = str(s)
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"),
                 ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\~{}"), ("^", r"\^{}")):
        out = out.replace(a, b)
    for a, b in (("±", r"$\pm$"), (">", r"$>$"), ("<", r"$<$"), ("—", "--"), ("→", r"$\to$"),
                 ("ρ", r"$\rho$"), ("λ", r"$\lambda$"), ("†", r"$^\dagger$")):
        out = out.replace(a, b)
    return out


@dataclass
class Section:
    heading: str
    frame: pd.DataFrame          # cells: Cell or str


@dataclass
class Built:
    table: Table
    long: pd.DataFrame
    sections: list[Section]
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    cited_as: str = "the MACCA paper"       # side-by-side tables: whose published values they show

    @property
    def partial(self) -> bool:
        return bool(self.missing)


# ---- building ------------------------------------------------------------------------------------

def _seed_note(n: int, expected: int) -> str:
    return "" if n >= expected else f" †(n={n}/{expected})"


def _bold_best(cells: list[Cell], means: list[float]) -> None:
    finite = [m for m in means if not math.isnan(m)]
    if len(finite) < 2:
        return
    best = max(finite)
    for c, m in zip(cells, means):
        c.bold = (not math.isnan(m)) and m == best


def _provenance(table: Table, keys: list[RunKey]) -> str:
    if not keys:
        return ""
    k = keys[0]
    seeds = ",".join(str(x.seed) for x in keys)
    return layout.run_dir(table.results, k.env, k.quality, k.algo, f"{{{seeds}}}")   # .../seed{0,1,2}


def build(table: Table) -> Built:
    if not table.active:
        raise MaccabenchError(f"table {table.name} has no rows in tier {table.tier}: {table.inactive_reason}")
    runs, missing = load_table_runs(table)
    builder = {"scores": _build_scores, "recovery": _build_recovery,
               "variants": _build_variants, "sweep": _build_sweep, "hparams": _build_hparams}[table.kind]
    built = builder(table, runs)
    built.missing = missing
    if _shows_score(table):
        built.notes[:0] = _undefined_notes(table, {(k.env, k.quality, r.score_undefined) for k, r in runs.items() if r.score_undefined})
    built.long.insert(0, "tier", table.tier)
    built.long.insert(0, "table", table.name)
    built.long["partial"] = bool(missing)
    if missing:
        built.notes.insert(0, f"PARTIAL TABLE: {len(missing)} of {len(table.runs())} runs are missing "
                              f"(† marks cells with fewer seeds than the tier's {len(table.seeds)}; "
                              f"{MISSING} marks cells with none): " + ", ".join(missing))
    return built


def _seeds_of(table: Table, runs: dict[RunKey, Run], env: str, quality: str, algo: str) -> list[RunKey]:
    return [k for s in table.seeds if (k := RunKey(env, quality, algo, s)) in runs]


def _shows_score(table: Table) -> bool:
    return table.kind in ("scores", "sweep") or (table.kind == "variants" and "score" in table.measures)


def _split_undefined(runs: dict[RunKey, Run], keys: list[RunKey]) -> tuple[list[RunKey], dict]:
    """(runs with a score, CSV columns saying how many have none and why): statistics use only the first."""
    undefined = [k for k in keys if runs[k].score_undefined]
    reasons = dict.fromkeys(runs[k].score_undefined for k in undefined)
    return [k for k in keys if k not in undefined], {"n_undefined": len(undefined), "score_undefined": "; ".join(reasons)}


def _or_undefined(n_seeds: int, n_undefined: int, text: str) -> str:
    """A cell's text: the statistic where some run has a score, else UNDEFINED or MISSING."""
    if n_seeds:
        return text
    return UNDEFINED if n_undefined else MISSING


def _undefined_notes(table: Table, cells: set[tuple[str, str, str]]) -> list[str]:
    """The footnote of UNDEFINED from its (env, quality, reason) triples: which cells and why."""
    if not cells:
        return []
    which = "; ".join(f"{table.label(env)} {table.label(q)}: {why}" for env, q, why in sorted(cells))
    return [f"{UNDEFINED}: no normalised score, because the behaviour learner's expert is not clearly better than its "
            f"random policy, so 100 (S - S_random) / (S_expert - S_random) would divide by noise. Those runs are left out "
            f"of every statistic (mean ± std, IQM and its bootstrap CI, the pooled row, P(X > Y)); a cell that still has "
            f"scored seeds shows them with † (n=...). Their raw returns stay in final.json. {which}."]


def _stats_row(values: np.ndarray, boot: dict) -> dict:
    m, sd = stats.mean_std(values)
    q, lo, hi = stats.bootstrap_ci(values, "iqm", reps=boot["reps"], confidence=boot["confidence"], seed=boot["seed"])
    return {"n_seeds": len(values), "mean": m, "std": sd, "iqm": q, "iqm_low": lo, "iqm_high": hi}


def _build_scores(table: Table, runs: dict[RunKey, Run]) -> Built:
    boot, spec, n_exp = table.bootstrap, digits("score", table.metric), len(table.seeds)
    long, values = [], {}
    for env, q in table.rows:
        for algo in table.algos:
            keys, undefined = _split_undefined(runs, _seeds_of(table, runs, env, q, algo))
            v = np.array([runs[k].score for k in keys])
            values[env, q, algo] = v
            long.append({"env": env, "quality": q, "algo": algo, "measure": table.metric,
                         **_stats_row(v, boot), **undefined, "seeds": ",".join(str(k.seed) for k in keys),
                         "runs": _provenance(table, keys)})
    df = pd.DataFrame(long)
    # aggregate over tasks: IQM of every task's seeds, stratified bootstrap (seeds resampled per task)
    for algo in table.algos:
        tasks = [values[env, q, algo] for env, q in table.rows]   # undefined cells: empty, left out
        q_, lo, hi = stats.bootstrap_ci(tasks, "iqm", reps=boot["reps"], confidence=boot["confidence"], seed=boot["seed"])
        m = stats.mean(tasks)
        n_undefined = int(df.loc[df.algo == algo, "n_undefined"].sum())
        df = pd.concat([df, pd.DataFrame([{"env": "all", "quality": "all", "algo": algo, "measure": table.metric,
                                           "n_seeds": sum(len(t) for t in tasks), "mean": m, "std": float("nan"),
                                           "iqm": q_, "iqm_low": lo, "iqm_high": hi, "n_undefined": n_undefined,
                                           "score_undefined": "", "seeds": "", "runs": ""}])],
                       ignore_index=True)
    df["best_in_row"] = False
    for env, q in table.rows:
        sel = (df.env == env) & (df.quality == q)
        means = df.loc[sel, "mean"]
        if means.notna().sum() >= 2:
            df.loc[sel, "best_in_row"] = means == means.max()
    df = _improvement_columns(table, df, values, [(e, q) for e, q in table.rows])

    def row_header(env, q):
        return {"Env": table.label(env), "Quality": table.label(q)}

    paper_form, robust, improve = [], [], []
    for env, q in table.rows:
        sub = df[(df.env == env) & (df.quality == q)].set_index("algo")

        def text(a, t):
            return _or_undefined(sub.at[a, "n_seeds"], sub.at[a, "n_undefined"], t)

        cells = [Cell(text(a, mean_pm_std(sub.at[a, "mean"], sub.at[a, "std"], spec) + _seed_note(sub.at[a, "n_seeds"], n_exp)),
                      bool(sub.at[a, "best_in_row"])) for a in table.algos]
        paper_form.append({**row_header(env, q), **{table.label(a): c for a, c in zip(table.algos, cells)}})
        robust.append({**row_header(env, q), **{table.label(a): Cell(text(a, interval(sub.at[a, "iqm"], sub.at[a, "iqm_low"], sub.at[a, "iqm_high"], spec)))
                                                for a in table.algos}})
        improve.append({**row_header(env, q), **{_poi_name(table, x, y): Cell(_improvement_text(sub, x, y))
                                                 for x, y in table.improvement}})
    agg = df[df.env == "all"].set_index("algo")
    pooled = [Cell(_or_undefined(agg.at[a, "n_seeds"], agg.at[a, "n_undefined"],
                                 interval(agg.at[a, "iqm"], agg.at[a, "iqm_low"], agg.at[a, "iqm_high"], spec))) for a in table.algos]
    _bold_best(pooled, [agg.at[a, "iqm"] for a in table.algos])
    robust.append({"Env": "All tasks", "Quality": "(pooled)", **{table.label(a): c for a, c in zip(table.algos, pooled)}})
    improve.append({"Env": "All tasks", "Quality": "(mean, 95% CI)",
                    **{_poi_name(table, x, y): Cell(_improvement_text(agg, x, y, interval(agg.at[x, "p_improvement"], agg.at[x, "p_low"],
                                                                                          agg.at[x, "p_high"], ".2f")), True)
                       for x, y in table.improvement}})
    metric = METRIC_NAMES.get(table.metric, table.metric)
    sections = [Section(f"{metric}: mean ± std over seeds (the paper's form; best mean per row in bold)", pd.DataFrame(paper_form)),
                Section(f"{metric}: interquartile mean [95% stratified bootstrap CI] over seeds", pd.DataFrame(robust))]
    if table.improvement:
        sections.append(Section("probability of improvement P(X > Y) over seeds (0.5 = no difference)", pd.DataFrame(improve)))
    return Built(table, df, sections, notes=_stats_notes(table))


def _poi_name(table: Table, x: str, y: str) -> str:
    return f"P({table.label(x)} > {table.label(y)})"


def _improvement_text(sub: pd.DataFrame, x: str, y: str, text: str | None = None) -> str:
    """P(X > Y) of a row (`sub` indexed by algo or variant); UNDEFINED where a side has only undefined scores."""
    if text is None:
        text = fmt(sub.at[x, "p_improvement"], ".2f")
    if not math.isnan(sub.at[x, "p_improvement"]):
        return text
    return UNDEFINED if sub.at[x, "n_undefined"] or sub.at[y, "n_undefined"] else MISSING


def _improvement_columns(table: Table, df: pd.DataFrame, values: dict, cells: list[tuple[str, str]]) -> pd.DataFrame:
    """P(X > Y) per task (on X's rows) and over all tasks (on X's `all` row), with bootstrap CIs."""
    df["improves_on"], df["p_improvement"], df["p_low"], df["p_high"] = "", np.nan, np.nan, np.nan
    boot = table.bootstrap
    for x, y in table.improvement:
        for env, q in cells:
            p, lo, hi = stats.probability_of_improvement_ci([values[env, q, x]], [values[env, q, y]], reps=boot["reps"],
                                                            confidence=boot["confidence"], seed=boot["seed"])
            sel = (df.env == env) & (df.quality == q) & (df.algo == x)
            df.loc[sel, ["improves_on", "p_improvement", "p_low", "p_high"]] = [y, p, lo, hi]
        if (df.env == "all").any():
            p, lo, hi = stats.probability_of_improvement_ci([values[c + (x,)] for c in cells], [values[c + (y,)] for c in cells],
                                                            reps=boot["reps"], confidence=boot["confidence"], seed=boot["seed"])
            sel = (df.env == "all") & (df.algo == x)
            df.loc[sel, ["improves_on", "p_improvement", "p_low", "p_high"]] = [y, p, lo, hi]
    return df


def _stats_notes(table: Table) -> list[str]:
    b = table.bootstrap
    return [f"Cells: mean ± sample standard deviation (ddof=1) over {len(table.seeds)} training seed(s) "
            f"({', '.join(map(str, table.seeds))}); a single seed shows its value alone. "
            f"IQM: mean of the middle 50% of the seeds' scores (fractional trimming). "
            f"CI: {int(b['confidence'] * 100)}% percentile interval over {b['reps']} stratified bootstrap "
            f"replicates (seeds resampled within each task; seed {b['seed']}). "
            f"P(X > Y): fraction of seed pairs where X scores higher (ties count half), averaged over tasks."]


def _build_recovery(table: Table, runs: dict[RunKey, Run]) -> Built:
    n_exp, long = len(table.seeds), []
    for env, q in table.rows:
        for algo in table.algos:
            keys = _seeds_of(table, runs, env, q, algo)
            row = {"env": env, "quality": q, "algo": algo, "n_seeds": len(keys),
                   "seeds": ",".join(str(k.seed) for k in keys), "runs": _provenance(table, keys)}
            for corr in ("pearson", "spearman"):
                # a correlation is None where a reward was constant (undefined); such seeds are left out
                v = np.array([_num(runs[k].recovery[corr]["mean"]) for k in keys])
                row[f"{corr}_mean"], row[f"{corr}_std"] = stats.mean_std(v[~np.isnan(v)])
                # the reference: the team reward itself, what every agent gets without credit
                # assignment (a property of the raw dataset: the same in every run of the row)
                team = np.array([_num(runs[k].recovery.get("team_reward", {}).get(corr, {}).get("mean")) for k in keys])
                row[f"team_{corr}_mean"] = float(team[~np.isnan(team)].mean()) if (~np.isnan(team)).any() else math.nan
                per_agent = [runs[k].recovery[corr].get("per_agent") for k in keys]
                if per_agent and all(isinstance(p, list) for p in per_agent) and len({len(p) for p in per_agent}) == 1:
                    with warnings.catch_warnings():   # an agent whose correlation is undefined in every seed
                        warnings.simplefilter("ignore", RuntimeWarning)
                        means = np.nanmean(np.array([[_num(x) for x in p] for p in per_agent]), axis=0)
                    row[f"{corr}_per_agent"] = " ".join(fmt(float(x), ".3f") for x in means)
            row["n_samples"] = int(sum(runs[k].recovery.get("n_samples", 0) for k in keys))
            row.update(_mask_recovery_columns([runs[k].recovery for k in keys]))
            long.append(row)
    df = pd.DataFrame(long)
    sections = []
    for corr, name in (("pearson", "Pearson r"), ("spearman", "Spearman ρ")):
        frame = []
        for env, q in table.rows:
            sub = df[(df.env == env) & (df.quality == q)].set_index("algo")
            cells = [Cell(mean_pm_std(sub.at[a, f"{corr}_mean"], sub.at[a, f"{corr}_std"], ".2f") + _seed_note(sub.at[a, "n_seeds"], n_exp)
                          if sub.at[a, "n_seeds"] else MISSING) for a in table.algos]
            _bold_best(cells, [sub.at[a, f"{corr}_mean"] for a in table.algos])
            team = sub[f"team_{corr}_mean"].dropna()
            team_cell = fmt(float(team.mean()), ".2f") if len(team) else MISSING
            frame.append({"Env": table.label(env), "Quality": table.label(q), **{table.label(a): c for a, c in zip(table.algos, cells)},
                          "team reward (reference)": team_cell})
        sections.append(Section(f"{name} between the learned per-agent reward and the hidden individual reward "
                                f"(mean over agents; mean ± std over seeds)", pd.DataFrame(frame)))
    mask_sections = _mask_recovery_sections(table, df)
    sections += mask_sections
    notes = ["Correlations are computed on the RAW dataset (which keeps the individual rewards) after training; "
             "training itself reads only team rewards. The paper reports no such measure.",
             "team reward (reference): the correlation of the team reward itself with each agent's hidden reward, "
             "what every agent receives without credit assignment. Near 1 where the agents share their reward "
             "(MPE's predator-prey and world adversaries): the team reward is then already each agent's reward up to "
             "scale, and the team reward does not identify any other split.",
             "The causal model reads only the sampled batches, never the backbone, so MACCA runs that differ only in "
             "their backbone and share a seed learn the same model: equal columns are expected."]
    if mask_sections:
        notes.append(f"Mask recovery (envs whose task declares its true causal structure; `{NO_TRUTH}` elsewhere): "
                     "each run's final mask snapshot (mean mask probability over the probe batch) thresholded at the "
                     "causal model's h, as relabelling does, against the true masks: F1 (precision / recall) per agent, "
                     "averaged over agents, then over seeds. An agent with an empty learned mask has no precision and "
                     "is left out of the precision mean.")
    return Built(table, df, sections, notes=notes)


NO_TRUTH = "no ground truth"   # recovery table: an env that declares no true causal masks


def _mask_recovery_columns(recoveries: list[dict]) -> dict:
    """Long-table columns of mask recovery over a cell's seeds: `mask_ground_truth` (whether the
    env declares true masks: every seed's file holds scores) and `<kind>_<measure>_mean/_std`
    (NaN without ground truth, or where a measure is undefined in every seed)."""
    scored = [r.get(MASK_RECOVERY) for r in recoveries]
    row = {"mask_ground_truth": bool(scored) and all(m is not None for m in scored)}
    for kind in MASK_KINDS:
        for m in MASK_MEASURES:
            v = np.array([_num(x[kind][m]["mean"]) for x in scored if x is not None]) if row["mask_ground_truth"] \
                else np.array([])
            row[f"{kind}_{m}_mean"], row[f"{kind}_{m}_std"] = stats.mean_std(v[~np.isnan(v)])
    return row


def _mask_recovery_sections(table: Table, df: pd.DataFrame) -> list[Section]:
    """One section per mask kind, cells F1 (precision / recall), where any row has ground truth."""
    if not df["mask_ground_truth"].any():
        return []
    n_exp, sections = len(table.seeds), []
    for kind, name in (("s_to_r", "s→r"), ("a_to_r", "a→r")):
        frame = []
        for env, q in table.rows:
            sub = df[(df.env == env) & (df.quality == q)].set_index("algo")

            def cell(a: str) -> Cell:
                if not sub.at[a, "n_seeds"]:
                    return Cell(MISSING)
                if not sub.at[a, "mask_ground_truth"]:
                    return Cell(NO_TRUTH)
                f1 = mean_pm_std(sub.at[a, f"{kind}_f1_mean"], sub.at[a, f"{kind}_f1_std"], ".2f")
                pr = " / ".join(fmt(sub.at[a, f"{kind}_{m}_mean"], ".2f") for m in ("precision", "recall"))
                return Cell(f"{f1} ({pr})" + _seed_note(sub.at[a, "n_seeds"], n_exp))
            cells = [cell(a) for a in table.algos]
            _bold_best(cells, [sub.at[a, f"{kind}_f1_mean"] for a in table.algos])
            frame.append({"Env": table.label(env), "Quality": table.label(q), **{table.label(a): c for a, c in zip(table.algos, cells)}})
        sections.append(Section(f"Mask recovery, {name}: F1 (precision / recall) of the thresholded learned mask against the "
                                f"true causal mask (mean over agents; mean ± std of F1 over seeds)", pd.DataFrame(frame)))
    return sections


def _num(x) -> float:
    return float("nan") if x is None else float(x)


def _variant_values(table: Table, runs: dict[RunKey, Run], algo: str, measure: str, at: float | None):
    """(keys, values, loop steps, undefined columns) of a variant's runs; for the score only the runs that have one."""
    keys, undefined = _seeds_of(table, runs, table.env, table.quality, algo), {"n_undefined": 0, "score_undefined": ""}
    if measure == "score":
        keys, undefined = _split_undefined(runs, keys)
    pairs = [runs[k].value_at(measure, at) for k in keys]
    return keys, np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]), undefined


def _build_variants(table: Table, runs: dict[RunKey, Run]) -> Built:
    boot, n_exp, long, values = table.bootstrap, len(table.seeds), [], {}
    for label, algo in table.rows:
        for measure in table.measures:
            keys, v, steps, undefined = _variant_values(table, runs, algo, measure, None)
            if measure == "score":
                values[label] = v
            long.append({"variant": label, "algo": algo, "env": table.env, "quality": table.quality,
                         "measure": table.metric if measure == "score" else measure, "at_fraction": 1.0,
                         "loop_steps": float(np.mean(steps)) if len(steps) else np.nan,
                         **_stats_row(v, boot), **undefined, "seeds": ",".join(str(k.seed) for k in keys),
                         "runs": _provenance(table, keys)})
    df = pd.DataFrame(long)
    paper_form, robust = [], []
    score_cells, score_means = [], []
    for label, algo in table.rows:
        row, rrow = {table.parameter: label, "algorithm": table.label(algo)}, {table.parameter: label}
        for measure in table.measures:
            s = df[(df.variant == label) & (df.measure == (table.metric if measure == "score" else measure))].iloc[0]
            d = digits(measure, table.metric)
            c = Cell(_or_undefined(s["n_seeds"], s["n_undefined"], mean_pm_std(s["mean"], s["std"], d) + _seed_note(s["n_seeds"], n_exp)))
            row[_measure_header(table, measure)] = c
            if measure == "score":
                score_cells.append(c)
                score_means.append(s["mean"])
                rrow[_measure_header(table, measure)] = Cell(_or_undefined(s["n_seeds"], s["n_undefined"],
                                                                           interval(s["iqm"], s["iqm_low"], s["iqm_high"], d)))
        paper_form.append(row)
        robust.append(rrow)
    _bold_best(score_cells, score_means)
    sections = [Section("mean ± std over seeds at the end of training (best score in bold)", pd.DataFrame(paper_form))]
    if "score" in table.measures:
        sections.append(Section("final score: interquartile mean [95% stratified bootstrap CI] over seeds", pd.DataFrame(robust)))
    df, more = _variant_improvement(table, df, values)
    return Built(table, df, sections + more, notes=_stats_notes(table) + _variant_notes(table))


def _measure_header(table: Table, measure: str) -> str:
    return METRIC_NAMES.get(table.metric, table.metric) if measure == "score" else MEASURE_NAMES[measure]


def _variant_improvement(table: Table, df: pd.DataFrame, values: dict) -> tuple[pd.DataFrame, list[Section]]:
    """P(X > Y) of the final score for the configured pairs of variants: CSV rows and a section."""
    if not table.improvement or not values:
        return df, []
    boot, algo_of, extra, rows = table.bootstrap, dict(table.rows), [], []
    score = df[df.measure == table.metric].set_index("variant")
    for x, y in table.improvement:
        p, lo, hi = stats.probability_of_improvement_ci([values[x]], [values[y]], reps=boot["reps"],
                                                        confidence=boot["confidence"], seed=boot["seed"])
        extra.append({"variant": x, "algo": algo_of[x], "env": table.env, "quality": table.quality,
                      "measure": "p_improvement", "at_fraction": 1.0, "n_seeds": len(values[x]),
                      "improves_on": y, "p_improvement": p, "p_low": lo, "p_high": hi})
        rows.append({"X": x, "Y": y, "P(X > Y) [95% CI]": Cell(_improvement_text(
            score.assign(p_improvement=p), x, y, interval(p, lo, hi, ".2f")))})
    df = pd.concat([df, pd.DataFrame(extra)], ignore_index=True)
    return df, [Section("probability of improvement of the final score over seeds", pd.DataFrame(rows))]


def _variant_notes(table: Table) -> list[str]:
    return [f"All rows: env {table.label(table.env)}, {table.quality} dataset; the algorithm column names the "
            f"run folders (runs/{table.env}/{table.quality}/<algorithm>/seed*)."]


def _build_sweep(table: Table, runs: dict[RunKey, Run]) -> Built:
    n_exp, long = len(table.seeds), []
    for label, algo in table.rows:
        for at in table.at:
            keys, v, _, undefined = _variant_values(table, runs, algo, "score", at)
            _, dens, steps, _ = _variant_values(table, runs, algo, table.density, at)   # every run, scored or not
            dm, ds = stats.mean_std(dens)
            long.append({"variant": label, "algo": algo, "env": table.env, "quality": table.quality,
                         "measure": table.metric, "at_fraction": at,
                         "loop_steps": float(np.mean(steps)) if len(steps) else np.nan,
                         **_stats_row(v, table.bootstrap), **undefined,
                         f"{table.density}_mean": dm, f"{table.density}_std": ds,
                         "seeds": ",".join(str(k.seed) for k in keys), "runs": _provenance(table, keys)})
    df = pd.DataFrame(long)
    spec = digits("score", table.metric)
    headers = {}
    for at in table.at:
        steps = df.loc[df.at_fraction == at, "loop_steps"].dropna()
        headers[at] = f"t = {at:g} of training" + (f" ({steps.mean():,.0f} loop steps)" if len(steps) else "")
    frame, cols = [], {at: [] for at in table.at}
    for label, algo in table.rows:
        row = {table.parameter: label, "algorithm": table.label(algo)}
        for at in table.at:
            s = df[(df.variant == label) & (df.at_fraction == at)].iloc[0]
            dens = s[f"{table.density}_mean"]
            density_text = f" ({fmt(dens, '.2f')})" if not math.isnan(dens) else ""
            c = Cell(mean_pm_std(s["mean"], s["std"], spec) + density_text + _seed_note(s["n_seeds"], n_exp) if s["n_seeds"]
                     else UNDEFINED + density_text if s["n_undefined"] else MISSING)
            row[headers[at]] = c
            cols[at].append((c, s["mean"]))
        frame.append(row)
    for at in table.at:
        _bold_best([c for c, _ in cols[at]], [m for _, m in cols[at]])
    density = MEASURE_NAMES[table.density]
    sections = [Section(f"{METRIC_NAMES.get(table.metric, table.metric)} mean ± std over seeds ({density} in brackets) "
                        f"at points in training; best per column in bold", pd.DataFrame(frame))]
    final = [(label, df[(df.variant == label) & (df.at_fraction == table.at[-1])].iloc[0]) for label, _ in table.rows]
    sections.append(Section(f"score at t = {table.at[-1]:g}: interquartile mean [95% stratified bootstrap CI]",
                            pd.DataFrame([{table.parameter: label, "IQM [95% CI]": Cell(_or_undefined(
                                s["n_seeds"], s["n_undefined"], interval(s["iqm"], s["iqm_low"], s["iqm_high"], spec)))}
                                          for label, s in final])))
    notes = _stats_notes(table) + _variant_notes(table) + [
        "Points in training are fractions of each run's updates; the evaluation nearest to each point is used "
        "(the paper's columns are loop steps t of a 2e5-step run: 1e4 = 0.05, 5e4 = 0.25, 1e5 = 0.5, 2e5 = 1)."]
    return Built(table, df, sections, notes=notes)


# ---- hyper-parameters the runs resolved (Tables 3 and 4) ----------------------------------------

def run_config(run: Run) -> dict:
    """The resolved job a run folder's config.yaml records."""
    path = run.folder / layout.RUN_CONFIG
    try:
        recorded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise RunError(path, f"cannot be read ({e})", "rerun the training job that wrote it") from None
    if not isinstance(recorded, dict):
        raise RunError(path, "is not a mapping", "rerun the training job that wrote it")
    return recorded


def config_value(recorded: dict, path: str):
    """A field of config.yaml by dotted path (`backbone_hp.cql_alpha`); `a*b` multiplies two
    fields (e.g. evaluation interval in loop steps). None where the run has no such field."""
    values = []
    for part in path.split("*"):
        v = recorded
        for name in part.split("."):
            if not isinstance(v, dict) or name not in v:
                return None
            v = v[name]
        values.append(v)
    return math.prod(values) if len(values) > 1 else values[0]


def _hp_text(v) -> str:
    return format(v, "g") if isinstance(v, float) else str(v)


def _hp_cell(table: Table, found: list[tuple[str, str, object]]) -> str:
    """The values of one hyper-parameter over runs ((env, algo, value) each): the value, or where
    runs differ, each value with the tasks (and, if a task has several, the algorithms) using it."""
    by_value = {}
    for env, algo, v in found:
        by_value.setdefault(_hp_text(v), []).append((env, algo))
    if not by_value:
        return MISSING
    if len(by_value) == 1:
        return next(iter(by_value))
    split_envs = {e for e, _, _ in found if len({_hp_text(v) for e2, _, v in found if e2 == e}) > 1}
    parts = []
    for text, where in by_value.items():
        names = dict.fromkeys(f"{table.label(e)}: {table.label(a)}" if e in split_envs else table.label(e) for e, a in where)
        parts.append(f"{text} ({', '.join(names)})")
    return "; ".join(parts)


def hp_columns(table: Table) -> list[str]:
    """Column keys: the qualities in the paper's order (by_quality) or "all"."""
    return [q for q in reversed(QUALITIES) if q in table.qualities] if table.by_quality else ["all"]


def _build_hparams(table: Table, runs: dict[RunKey, Run]) -> Built:
    configs = {k: run_config(r) for k, r in runs.items()}
    long, frame = [], []
    for label, path in table.rows:
        row = {"hyper-parameter": label, "config.yaml field": path}
        for col in hp_columns(table):
            found = [(k.env, k.algo, v) for k, c in configs.items() if (col == "all" or k.quality == col)
                     and (v := config_value(c, path)) is not None]
            text = _hp_cell(table, found)
            row["value" if col == "all" else table.label(col)] = Cell(text)
            long.append({"parameter": label, "field": path, "quality": col, "value": text, "n_runs": len(found),
                         "envs": ",".join(dict.fromkeys(e for e, _, _ in found)),
                         "algos": ",".join(dict.fromkeys(a for _, a, _ in found))})
        frame.append(row)
    heading = ("per dataset quality" if table.by_quality else "over every quality") + \
        f": the values recorded in the config.yaml of the runs of {', '.join(table.label(e) for e in table.envs)}"
    notes = [f"Read from the config.yaml of every run of {', '.join(table.label(a) for a in table.algos)} on "
             f"{', '.join(table.label(e) for e in table.envs)} (tier {table.tier}, seeds "
             f"{', '.join(map(str, table.seeds))}); a field only some algorithms have is read from those. Where runs "
             "differ, each value is listed with the tasks using it. Sources of the values: docs/hyperparameters.md."]
    return Built(table, pd.DataFrame(long), [Section(heading, pd.DataFrame(frame))], notes=notes)


# ---- writing -------------------------------------------------------------------------------------

def _render_frame(frame: pd.DataFrame, how: str) -> pd.DataFrame:
    out = frame.copy()
    for c in out.columns:
        out[c] = [v.render(how) if isinstance(v, Cell) else Cell(str(v)).render(how) for v in out[c]]
    if how == "tex":
        out.columns = [tex_escape(c) for c in out.columns]
    elif how == "html":
        out.columns = [htmllib.escape(c) for c in out.columns]
    return out


def _tabular(f: pd.DataFrame) -> str:
    """A booktabs tabular (written here rather than by pandas, which would need jinja2)."""
    lines = [rf"\begin{{tabular}}{{{'l' * min(2, f.shape[1]) + 'r' * max(0, f.shape[1] - 2)}}}", r"\toprule",
             " & ".join(f.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(map(str, row)) + r" \\" for row in f.itertuples(index=False)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #111; }
h1 { font-size: 1.3em; } h2 { font-size: 1.05em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; white-space: nowrap; }
th { background: #f2f2f2; } td:nth-child(-n+2), th:nth-child(-n+2) { text-align: left; }
.partial { color: #a00; font-weight: bold; } .paper { color: #555; } p.note { max-width: 60em; font-size: 0.85em; }
"""


def render(title: str, caption: str, sections: list[Section], notes: list[str], how: str, partial: bool = False) -> str:
    mark = "PARTIAL: " if partial else ""
    if how == "md":
        parts = [f"# {mark}{title}", "", caption, ""]
        for s in sections:
            parts += [f"## {s.heading}", "", _render_frame(s.frame, "md").to_markdown(index=False, disable_numparse=True), ""]
        parts += [f"- {n}" for n in notes]
        return "\n".join(parts) + "\n"
    if how == "tex":
        parts = [f"% {mark}{title}", "% generated by maccabench.aggregate from run folders; needs \\usepackage{booktabs}"]
        for s in sections:
            parts += [r"\begin{table}[t]", r"\centering", r"\small",
                      rf"\caption{{{tex_escape(mark + title)}: {tex_escape(s.heading)}}}",
                      _tabular(_render_frame(s.frame, "tex")), r"\end{table}", ""]
        parts += [f"% {n}" for n in notes]
        return "\n".join(parts) + "\n"
    if how == "html":
        esc = htmllib.escape
        parts = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>", f"<title>{esc(title)}</title>",
                 f"<style>{HTML_STYLE}</style></head><body>",
                 f"<h1>{'<span class=partial>PARTIAL: </span>' if partial else ''}{esc(title)}</h1>", f"<p>{esc(caption)}</p>"]
        for s in sections:
            parts += [f"<h2>{esc(s.heading)}</h2>", _render_frame(s.frame, "html").to_html(index=False, escape=False, border=0)]
        parts += [f"<p class=note>{esc(n)}</p>" for n in notes]
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"
    raise ValueError(how)


def write(built: Built, out_dir: str | Path) -> dict[str, Path]:
    """Writes <name>.csv/.md/.tex/.html into out_dir (each atomically); returns the paths."""
    t = built.table
    paths = {how: Path(out_dir) / f"{t.name}.{how}" for how in layout.TABLE_FORMATS}
    with atomic_path(paths["csv"]) as tmp:
        built.long.to_csv(tmp, index=False)
    for how in ("md", "tex", "html"):
        with atomic_path(paths[how]) as tmp:
            tmp.write_text(render(t.title, t.caption(), built.sections, built.notes, how, built.partial))
    return paths


# ---- side by side with the paper's published values ---------------------------------------------------

def read_csv(path: str | Path) -> pd.DataFrame:
    """A table's CSV as written by `write` (labels stay strings: "0.5" must not become 0.5)."""
    return pd.read_csv(path, dtype={c: str for c in ("variant", "env", "quality", "algo", "seeds", "runs", "improves_on",
                                                    "parameter", "field", "value", "envs", "algos")},
                       keep_default_na=False, na_values=[""])


def load_paper_values(path: str | Path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def _ours_or_undefined(s: pd.DataFrame, text: str) -> str:
    """Our side of a side-by-side cell (`s`: its rows of our CSV): UNDEFINED where no run of it has a
    score because the references are within noise (CSVs from before `n_undefined` show the text)."""
    if len(s) and "n_undefined" in s and not s["n_seeds"].iloc[0] and s["n_undefined"].iloc[0]:
        return UNDEFINED
    return text


def _csv_undefined(long: pd.DataFrame) -> set[tuple[str, str, str]]:
    """(env, quality, reason) of the cells of our CSV that hold runs without a score."""
    if "n_undefined" not in long:
        return set()
    rows = long[(long["n_undefined"] > 0) & long["score_undefined"].notna() & (long["score_undefined"] != "")]
    return {(e, q, why) for e, q, why in zip(rows["env"], rows["quality"], rows["score_undefined"])}


def _paper_cell(v) -> tuple[float, float, float]:
    """[mean, std] or [mean, std, density] -> (mean, std, density or nan)."""
    if v is None:
        return float("nan"), float("nan"), float("nan")
    v = list(v) + [float("nan")] * (3 - len(v))
    return float(v[0]), float(v[1]), float(v[2])


def side_by_side(table: Table, long: pd.DataFrame, paper: dict) -> Built:
    """Our numbers (from the table's CSV) next to the paper's (config/paper_values.yaml), cell by cell."""
    if not table.paper or table.paper not in paper:
        raise MaccabenchError(f"table {table.name}: no paper values {table.paper!r} in config/paper_values.yaml "
                              f"(set tables.{table.name}.paper to one of {', '.join(k for k in paper if k != 'source')})")
    pv = paper[table.paper]
    ours_tag, paper_tag = "ours", "paper"
    frame = []
    spec = digits("score", table.metric)
    pspec = digits("score", pv.get("metric", table.metric))
    if table.kind == "scores":
        for env, q in table.rows:
            row = {"Env": table.label(env), "Quality": table.label(q)}
            for a in table.algos:
                s = long[(long.env == env) & (long.quality == q) & (long.algo == a)]
                m, sd = (s["mean"].iloc[0], s["std"].iloc[0]) if len(s) else (np.nan, np.nan)
                paper_env = table.paper_rows.get(env, env)
                pm, ps, _ = _paper_cell(pv.get("cells", {}).get(paper_env, {}).get(q, {}).get(a))
                row[f"{table.label(a)} ({ours_tag})"] = Cell(_ours_or_undefined(s, mean_pm_std(m, sd, spec)))
                row[f"{table.label(a)} ({paper_tag})"] = Cell(mean_pm_std(pm, ps, pspec))
            frame.append(row)
    elif table.kind == "sweep":
        for label, algo in table.rows:
            row = {table.parameter: label}
            paper_row = pv.get("rows", {}).get(label, [])
            for at in table.at:
                s = long[(long.variant == label) & (np.isclose(long.at_fraction, at))]
                dens = s[f"{table.density}_mean"].iloc[0] if len(s) else np.nan
                ours = _ours_or_undefined(s, mean_pm_std(s["mean"].iloc[0], s["std"].iloc[0], spec) if len(s) else MISSING)
                row[f"t={at:g} ({ours_tag})"] = Cell(ours + ("" if math.isnan(dens) else f" ({dens:.2f})"))
                idx = [i for i, f in enumerate(pv.get("at_fraction", [])) if np.isclose(f, at)]
                pm, ps, pd_ = _paper_cell(paper_row[idx[0]] if idx and idx[0] < len(paper_row) else None)
                row[f"t={at:g} ({paper_tag})"] = Cell(mean_pm_std(pm, ps, pspec) + ("" if math.isnan(pd_) else f" ({pd_:.2f})"))
            frame.append(row)
    elif table.kind == "variants":
        for label, algo in table.rows:
            row = {table.parameter: label}
            for measure in table.measures:
                name = table.metric if measure == "score" else measure
                s = long[(long.variant == label) & (long.measure == name)]
                d = digits(measure, table.metric)
                row[f"{_measure_header(table, measure)} ({ours_tag})"] = Cell(_ours_or_undefined(
                    s, mean_pm_std(s["mean"].iloc[0], s["std"].iloc[0], d) if len(s) else MISSING))
                pm, ps, _ = _paper_cell(pv.get("rows", {}).get(label, {}).get(measure))
                row[f"{_measure_header(table, measure)} ({paper_tag})"] = Cell(mean_pm_std(pm, ps, digits(measure, pv.get("metric"))))
            frame.append(row)
    elif table.kind == "hparams":
        for label, path in table.rows:
            row = {"hyper-parameter": label}
            published = pv.get("rows", {}).get(label)
            for col in hp_columns(table):
                s = long[(long.parameter == label) & (long.quality == col)]
                name = "value" if col == "all" else table.label(col)
                row[f"{name} ({ours_tag})"] = Cell(str(s["value"].iloc[0]) if len(s) else MISSING)
                value = published.get(col) if isinstance(published, dict) else published
                row[f"{name} ({paper_tag})"] = Cell(MISSING if value is None else _hp_text(value))
            frame.append(row)
    else:
        raise MaccabenchError(f"table {table.name}: kind {table.kind} has no paper counterpart; remove tables.{table.name}.paper")
    source = pv.get("source", paper.get("source", ""))   # an entry may cite another paper (the anchor: OMAR's)
    notes = [f"'{paper_tag}' columns: the paper's published values, {source} ({table.paper}), "
             f"typed into config/paper_values.yaml; '{ours_tag}' columns: this pipeline's runs (tier {table.tier}, "
             f"{len(table.seeds)} seed(s)), from {table.name}.csv.", pv.get("note", "")]
    if bool(long["partial"].any()) if "partial" in long else False:
        notes.insert(0, "Our table is PARTIAL (see its CSV/Markdown for the missing runs).")
    notes[:0] = _undefined_notes(table, _csv_undefined(long))
    out = pd.DataFrame(frame)
    long_out = pd.DataFrame([{c: (v.text if isinstance(v, Cell) else v) for c, v in r.items()} for r in frame])
    return Built(table, long_out, [Section("ours | paper (paper values marked '(paper)', never used in our tables)", out)],
                 notes=[n for n in notes if n], cited_as=pv.get("cited_as", "the MACCA paper"))


def write_side_by_side(built: Built, out_dir: str | Path) -> dict[str, Path]:
    t = built.table
    paths = {how: Path(out_dir) / f"{layout.vs_paper(t.name)}.{how}" for how in layout.TABLE_FORMATS}
    with atomic_path(paths["csv"]) as tmp:
        built.long.to_csv(tmp, index=False)
    title = f"{t.title} — ours vs the paper"
    caption = (f"Side-by-side version of {t.name}: our numbers from run folders (tier {t.tier}) next to the values "
               f"published in {built.cited_as}, marked '(paper)'.")
    for how in ("md", "tex", "html"):
        with atomic_path(paths[how]) as tmp:
            tmp.write_text(render(title, caption, built.sections, built.notes, how, False))
    return paths
