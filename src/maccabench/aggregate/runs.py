"""Reading run folders (`results/<tier>/runs/{env}/{quality}/{algo}/seed{s}/`) as the training
stage writes them: final.json (its presence means the run finished), metrics.csv (one row per
evaluation), masks.npz (MACCA runs) and reward_recovery.json (written by the evaluation rule).

Every file is checked against the folder it sits in, so a run copied to the wrong place, or left
over from another tier, is an error naming the file instead of a wrong number in a table.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import MaccabenchError
from .spec import RunKey, Table

FINAL_KEYS = ("env", "quality", "algo", "seed", "tier", "metric", "final", "best", "table_score",
              "S_random", "S_expert", "updates", "wall_s")
POINT_KEYS = ("updates", "return_mean", "return_std", "normalized_score", "win_rate")
METRICS_COLUMNS = ("updates", "loop_steps", "wall_s", "eval/return_mean", "eval/return_std",
                   "eval/normalized_score", "eval/win_rate")
# table measure -> metrics.csv column
MEASURE_COLUMNS = {"rho_sr": "causal/rho_sr", "rho_ar": "causal/rho_ar", "causal_loss": "causal/loss"}


class RunError(MaccabenchError):
    def __init__(self, path, problem: str, fix: str = "delete the run folder and rerun the pipeline to regenerate it"):
        self.path = str(path)
        super().__init__(f"{path}: {problem}. Fix: {fix}")


class RunsMissing(MaccabenchError):
    """Raised with every missing run of a table, so one message says what to run."""

    def __init__(self, table: str, missing: list[str], what: str = "final.json"):
        self.missing = missing
        listing = "\n  ".join(missing)
        super().__init__(
            f"table {table}: {len(missing)} run(s) not finished (no {what}):\n  {listing}\n"
            f"Fix: run them (e.g. `snakemake --cores 2 {table} --config tier=...`), or set "
            f"`tables.allow_partial: true` to tabulate what exists (the table is then marked partial)")


@dataclass
class Run:
    key: RunKey
    folder: Path
    final: dict
    recovery: dict | None = None
    _metrics: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def metric(self) -> str:
        return self.final["metric"]

    @property
    def score(self) -> float:
        """The number tables use: the final (or, where the config says so, best) evaluation's metric."""
        return float(self.final[self.final["table_score"]][self.metric])

    @cached_property
    def metrics(self) -> pd.DataFrame:
        path = self.folder / "metrics.csv"
        if not path.exists():
            raise RunError(path, "is missing although final.json exists")
        df = pd.read_csv(path)
        missing = [c for c in METRICS_COLUMNS if c not in df.columns]
        if missing:
            raise RunError(path, f"lacks the columns {', '.join(missing)} of the run-folder contract")
        if df.empty:
            raise RunError(path, "has no evaluation rows")
        return df.sort_values("updates", kind="stable").reset_index(drop=True)

    def column(self, measure: str) -> str:
        """metrics.csv column of a table measure ('score' is the run's metric)."""
        col = f"eval/{self.metric}" if measure == "score" else MEASURE_COLUMNS[measure]
        if col not in self.metrics.columns:
            raise RunError(self.folder / "metrics.csv", f"has no column {col!r} (needed for {measure})",
                           "this table needs a MACCA run; check the algorithm named in the table's rows")
        return col

    def value_at(self, measure: str, fraction: float | None = None) -> tuple[float, float]:
        """(value, loop_steps) of a measure at the evaluation nearest to `fraction` of the run's
        updates (None: the value the table uses at the end: final.json for the score, the last
        evaluation row for the causal diagnostics)."""
        if fraction is None and measure == "score":
            point = self.final[self.final["table_score"]]
            row = self.metrics[self.metrics["updates"] == point["updates"]]
            steps = float(row["loop_steps"].iloc[0]) if len(row) else float(self.metrics["loop_steps"].iloc[-1])
            return self.score, steps
        m = self.metrics
        if fraction is None:
            i = len(m) - 1
        else:
            target = fraction * float(self.final["updates"])
            i = int(np.argmin(np.abs(m["updates"].to_numpy(dtype=float) - target)))  # ties: the earlier row
        return float(m[self.column(measure)].iloc[i]), float(m["loop_steps"].iloc[i])

    def masks(self) -> dict[str, np.ndarray]:
        path = self.folder / "masks.npz"
        if not path.exists():
            raise RunError(path, "is missing: Figure 4 needs mask snapshots, which only MACCA runs write",
                           "point `tables.figures.masks.algo` at a MACCA algorithm, or rerun the run")
        with np.load(path) as z:
            out = {k: z[k] for k in z.files}
        for k in ("updates", "s_to_r", "a_to_r"):
            if k not in out:
                raise RunError(path, f"has no array {k!r}")
        if out["s_to_r"].ndim != 3 or out["a_to_r"].ndim != 3 or len(out["updates"]) != len(out["s_to_r"]):
            raise RunError(path, f"has shapes s_to_r {out['s_to_r'].shape}, a_to_r {out['a_to_r'].shape}, "
                                 f"updates {out['updates'].shape}; expected [K,N,S], [K,N,N*A], [K]")
        return out


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RunError(path, f"is not valid JSON ({e})") from None


def load_run(results: str | Path, key: RunKey, tier: str, with_recovery: bool = False) -> Run:
    folder = key.folder(results)
    path = folder / "final.json"
    final = _read_json(path)
    missing = [k for k in FINAL_KEYS if k not in final]
    if missing:
        raise RunError(path, f"lacks {', '.join(missing)} (not written by this pipeline's training stage?)")
    said = {"env": final["env"], "quality": final["quality"], "algo": final["algo"], "seed": int(final["seed"])}
    expected = {"env": key.env, "quality": key.quality, "algo": key.algo, "seed": key.seed}
    wrong = [f"{k}={said[k]!r} (folder says {expected[k]!r})" for k in expected if said[k] != expected[k]]
    if wrong:
        raise RunError(path, f"belongs to another run: {', '.join(wrong)}", "move or delete the folder")
    if final["tier"] != tier:
        raise RunError(path, f"was produced by tier {final['tier']!r}, not {tier!r}",
                       "results of one tier never stand in for another's; delete it and rerun")
    for which in ("final", "best"):
        gone = [k for k in POINT_KEYS if k not in final[which]]
        if gone:
            raise RunError(path, f"`{which}` lacks {', '.join(gone)}")
    if final["table_score"] not in ("final", "best"):
        raise RunError(path, f"table_score is {final['table_score']!r}, expected 'final' or 'best'")
    if final["metric"] not in ("normalized_score", "win_rate"):
        raise RunError(path, f"metric is {final['metric']!r}, expected normalized_score or win_rate")
    recovery = None
    if with_recovery:
        rpath = folder / "reward_recovery.json"
        recovery = _read_json(rpath)
        for k in ("pearson", "spearman"):
            if not isinstance(recovery.get(k), dict) or "mean" not in recovery[k]:
                raise RunError(rpath, f"`{k}` must be a mapping with per-agent values and `mean`")
    return Run(key, folder, final, recovery)


def load_table_runs(table: Table) -> tuple[dict[RunKey, Run], list[str]]:
    """The table's finished runs and the list of missing ones (RunsMissing unless allow_partial)."""
    runs, missing = {}, []
    recovery = table.kind == "recovery"
    for key in table.runs():
        folder = key.folder(table.results)
        need = [folder / "final.json"] + ([folder / "reward_recovery.json"] if recovery else [])
        absent = [p for p in need if not p.exists()]
        if absent:
            missing.append(str(absent[0]))
            continue
        runs[key] = load_run(table.results, key, table.tier, with_recovery=recovery)
    if missing and not table.allow_partial:
        raise RunsMissing(table.name, missing, "reward_recovery.json / final.json" if recovery else "final.json")
    for key, run in runs.items():
        if table.metric is not None and run.metric != table.metric:
            raise RunError(run.folder / "final.json", f"reports {run.metric!r} but table {table.name} shows {table.metric!r}",
                           f"check environments.{key.env}.metric and tables.{table.name}.metric")
    return runs, missing
