"""Reading the run folders a table needs (`results/<tier>/runs/{env}/{quality}/{algo}/seed{s}/`).
The files and their checks are maccabench.runfolder's, the paths maccabench.layout's; here: a run
as the tables see it (its score, its metrics at a point in training) and the runs of a table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from .. import layout, runfolder
from ..errors import MaccabenchError
from ..runfolder import RunError
from .spec import RunKey, Table

# table measure -> metrics.csv column
MEASURE_COLUMNS = {"rho_sr": "causal/rho_sr", "rho_ar": "causal/rho_ar", "causal_loss": "causal/loss"}


class RunsMissing(MaccabenchError):
    """Raised with every missing run of a table, so one message says what to run."""

    def __init__(self, table: str, missing: list[str], what: str = layout.FINAL):
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
    def score_undefined(self) -> str | None:
        """Why this run's table score is undefined (its normalised score's references are within
        noise, runfolder.SCORE_UNDEFINED), None where it is a number."""
        if self.metric != "normalized_score":
            return None
        return self.final.get(runfolder.SCORE_UNDEFINED) or \
            (None if self.final[self.final["table_score"]][self.metric] is not None else "no normalised score recorded")

    @property
    def score(self) -> float:
        """The number tables use: the final (or, where the config says so, best) evaluation's
        metric; nan where it is undefined (`score_undefined`)."""
        v = None if self.score_undefined else self.final[self.final["table_score"]][self.metric]
        return math.nan if v is None else float(v)

    @cached_property
    def metrics(self) -> pd.DataFrame:
        return runfolder.read_metrics(self.folder)

    def column(self, measure: str) -> str:
        """metrics.csv column of a table measure ('score' is the run's metric)."""
        col = runfolder.METRIC_COLUMNS[self.metric] if measure == "score" else MEASURE_COLUMNS[measure]
        if col not in self.metrics.columns:
            raise RunError(self.folder / layout.METRICS, f"has no column {col!r} (needed for {measure})",
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
        value = math.nan if measure == "score" and self.score_undefined else float(m[self.column(measure)].iloc[i])
        return value, float(m["loop_steps"].iloc[i])

    def masks(self) -> dict[str, np.ndarray]:
        return runfolder.read_masks(self.folder)


def load_run(results: str | Path, key: RunKey, tier: str, with_recovery: bool = False) -> Run:
    folder = key.folder(results)
    final = runfolder.read_final(folder, env=key.env, quality=key.quality, algo=key.algo, seed=key.seed, tier=tier)
    recovery = runfolder.read_recovery(folder) if with_recovery else None
    return Run(key, folder, final, recovery)


def load_table_runs(table: Table) -> tuple[dict[RunKey, Run], list[str]]:
    """The table's finished runs and the list of missing ones (RunsMissing unless allow_partial)."""
    runs, missing = {}, []
    recovery = table.kind == "recovery"
    for key in table.runs():
        need = [key.file(table.results, layout.FINAL)] + ([key.file(table.results, layout.RECOVERY)] if recovery else [])
        absent = [p for p in need if not p.exists()]
        if absent:
            missing.append(str(absent[0]))
            continue
        runs[key] = load_run(table.results, key, table.tier, with_recovery=recovery)
    if missing and not table.allow_partial:
        raise RunsMissing(table.name, missing, f"{layout.RECOVERY} / {layout.FINAL}" if recovery else layout.FINAL)
    for key, run in runs.items():
        if table.metric is not None and run.metric != table.metric:
            raise RunError(run.folder / layout.FINAL, f"reports {run.metric!r} but table {table.name} shows {table.metric!r}",
                           f"check environments.{key.env}.metric and tables.{table.name}.metric")
    return runs, missing
