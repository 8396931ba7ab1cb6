"""The run-folder format: what a training run writes and what the tables read, in one module.

    metrics.csv   one row per evaluation: FIXED_COLUMNS, then the backbone's `losses/...`, then
                  the reward assigner's columns (`causal/...`); empty cells where a value is None
    masks.npz     MACCA runs: mask probabilities per evaluation (MASK_ARRAYS)
    final.json    written last (its presence means the run finished): FINAL_KEYS, the final and
                  best evaluations as POINT_KEYS, which one tables use (`table_score`), references,
                  and SCORE_UNDEFINED: why normalised scores are None (null where they are defined;
                  absent in folders written before it existed)
    reward_recovery.json   MACCA runs, written after training by the recovery rule (`recovery_record`):
                  RECOVERY_KEYS (correlations), and MASK_RECOVERY: the learned masks scored against
                  the env's true causal masks (maskscore), null where the env declares none
                  (absent in files written before it existed)

Writers take explicit values (not the training job), readers check every file against the folder
it sits in, so a run copied to the wrong place or left over from another tier is an error naming
the file instead of a wrong number in a table. File names and folders: maccabench.layout.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from . import layout
from .errors import MaccabenchError
from .io import atomic_path, versions, write_json

FIXED_COLUMNS = ("updates", "loop_steps", "wall_s", "eval/return_mean", "eval/return_std",
                 "eval/episodes", "eval/normalized_score", "eval/win_rate")
METRIC_COLUMNS = {"normalized_score": "eval/normalized_score", "win_rate": "eval/win_rate"}   # env metric -> column
TABLE_SCORES = ("final", "best")
POINT_KEYS = ("updates", "return_mean", "return_std", "episodes", "normalized_score", "win_rate")
FINAL_KEYS = ("env", "quality", "algo", "seed", "tier", "metric", "final", "best", "table_score",
              "S_random", "S_expert", "updates", "wall_s", "versions")
SCORE_UNDEFINED = "normalized_score_undefined"   # final.json (and dataset attribute): reason, or None
MASK_ARRAYS = ("updates", "s_to_r", "a_to_r")
RECOVERY_KEYS = ("pearson", "spearman")
MASK_RECOVERY = "mask_recovery"   # reward_recovery.json: {threshold, updates, s_to_r, a_to_r} or None (no ground truth)
# written by other rules from a finished run; a run that (re)starts removes them, so none outlives the run it describes
DERIVED_FILES = (layout.RECOVERY,)


class RunError(MaccabenchError):
    def __init__(self, path, problem: str, fix: str = "delete the run folder and rerun the pipeline to regenerate it"):
        self.path = str(path)
        super().__init__(f"{path}: {problem}. Fix: {fix}")


# ---- writing ----------------------------------------------------------------------------------

def normalized_score(ret: float, s_random: float, s_expert: float, undefined: str | None = None) -> float | None:
    """100 (S - S_random) / (S_expert - S_random); None where the behaviour stage found the expert
    not clearly better than random (`undefined`: its reason, the datasets' SCORE_UNDEFINED
    attribute) or the references coincide. The raw return is kept beside it either way."""
    if undefined or s_expert == s_random:
        return None
    return 100.0 * (ret - s_random) / (s_expert - s_random)


def metrics_columns(rows: list[dict]) -> list[str]:
    """Column order of metrics.csv: the fixed columns, the losses, then everything else, each
    group in the order the rows first name them."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    extra = [k for k in seen if k not in FIXED_COLUMNS]
    return list(FIXED_COLUMNS) + [k for k in extra if k.startswith("losses/")] + \
        [k for k in extra if not k.startswith("losses/")]


def write_metrics(folder: str | Path, rows: list[dict]) -> Path:
    path = Path(folder) / layout.METRICS
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=metrics_columns(rows), restval="")
            w.writeheader()
            for row in rows:
                w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return path


def write_masks(folder: str | Path, snapshots: dict) -> Path:
    """snapshots: MASK_ARRAYS -> per-evaluation values ([K], [K,N,S], [K,N,N*A])."""
    path = Path(folder) / layout.MASKS
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **{k: np.asarray(snapshots[k]) for k in MASK_ARRAYS})
    return path


def recovery_record(correlations: dict, mask_recovery: dict | None) -> dict:
    """The content of reward_recovery.json: reward correlations (causal.reward_recovery) and mask
    recovery (maskscore.mask_recovery_of_run; None where the env has no ground-truth masks)."""
    return {**correlations, MASK_RECOVERY: mask_recovery}


def final_record(*, env: str, quality: str, algo: str, seed: int, tier: str, metric: str, table_score: str,
                 rows: list[dict], s_random: float, s_expert: float, wall_s: float,
                 score_undefined: str | None = None) -> dict:
    """The content of final.json from a run's metrics rows (FIXED_COLUMNS keys): the last
    evaluation, the best one by the env's metric (the earliest of equal bests; the last row when
    none has a value), the references the scores were normalised with, and why normalised scores
    are undefined (`score_undefined`, as given to `normalized_score`; their values are then None)."""
    key = METRIC_COLUMNS[metric]
    if score_undefined is None and s_expert == s_random:
        score_undefined = f"S_expert = S_random = {s_expert:.2f}"

    def point(row: dict) -> dict:
        return {"updates": row["updates"], "return_mean": row["eval/return_mean"], "return_std": row["eval/return_std"],
                "episodes": row["eval/episodes"], "normalized_score": row["eval/normalized_score"], "win_rate": row["eval/win_rate"]}

    scored = [r for r in rows if r[key] is not None and not math.isnan(r[key])]
    best = max(scored, key=lambda r: r[key]) if scored else rows[-1]
    return {"env": env, "quality": quality, "algo": algo, "seed": seed,
            "tier": tier, "metric": metric, "final": point(rows[-1]), "best": point(best),
            "table_score": table_score, "S_random": s_random, "S_expert": s_expert, SCORE_UNDEFINED: score_undefined,
            "updates": rows[-1]["updates"], "wall_s": round(wall_s, 2), "versions": versions()}


def write_final(folder: str | Path, final: dict) -> Path:
    """Write final.json; call it last, its presence means the run finished."""
    path = Path(folder) / layout.FINAL
    write_json(path, final)
    return path


# ---- reading ----------------------------------------------------------------------------------

def _read_mapping(path: Path, load, errors: tuple, fmt: str, what: str) -> dict:
    """A run-folder file that must parse (`load`) into a mapping, or RunError naming it."""
    if not path.exists():
        raise RunError(path, "does not exist")
    try:
        obj = load(path.read_text())
    except (*errors, UnicodeDecodeError) as e:
        raise RunError(path, f"is not valid {fmt} (truncated or corrupted: {e})") from None
    if not isinstance(obj, dict):
        raise RunError(path, f"holds a {type(obj).__name__}, not {what}")
    return obj


def _read_json(path: Path) -> dict:
    return _read_mapping(path, json.loads, (json.JSONDecodeError,), "JSON", "a JSON object")


def read_config(folder: str | Path) -> dict:
    """config.yaml of a run folder: the resolved job it was trained with (a mapping)."""
    import yaml

    path = Path(folder) / layout.RUN_CONFIG
    job = _read_mapping(path, yaml.safe_load, (yaml.YAMLError,), "YAML", "the mapping of a training job")
    from .jobs import TrainJob   # a file cut short can still parse, without its last keys
    missing = [f.name for f in dataclasses.fields(TrainJob) if f.init and f.name not in job]
    if missing:
        raise RunError(path, f"lacks {', '.join(missing)} (truncated, or not written by this pipeline's training stage)")
    return job


def read_final(folder: str | Path, *, env: str, quality: str, algo: str, seed: int, tier: str) -> dict:
    """final.json of the run folder of (env, quality, algo, seed) in `tier`, checked."""
    path = Path(folder) / layout.FINAL
    final = _read_json(path)
    missing = [k for k in FINAL_KEYS if k not in final]
    if missing:
        raise RunError(path, f"lacks {', '.join(missing)} (not written by this pipeline's training stage?)")
    said = {"env": final["env"], "quality": final["quality"], "algo": final["algo"], "seed": int(final["seed"])}
    expected = {"env": env, "quality": quality, "algo": algo, "seed": seed}
    wrong = [f"{k}={said[k]!r} (folder says {expected[k]!r})" for k in expected if said[k] != expected[k]]
    if wrong:
        raise RunError(path, f"belongs to another run: {', '.join(wrong)}", "move or delete the folder")
    if final["tier"] != tier:
        raise RunError(path, f"was produced by tier {final['tier']!r}, not {tier!r}",
                       "results of one tier never stand in for another's; delete it and rerun")
    for which in TABLE_SCORES:
        if not isinstance(final[which], dict):
            raise RunError(path, f"`{which}` is not a mapping")
        gone = [k for k in POINT_KEYS if k not in final[which]]
        if gone:
            raise RunError(path, f"`{which}` lacks {', '.join(gone)}")
    if final["table_score"] not in TABLE_SCORES:
        raise RunError(path, f"table_score is {final['table_score']!r}, expected 'final' or 'best'")
    if final["metric"] not in METRIC_COLUMNS:
        raise RunError(path, f"metric is {final['metric']!r}, expected normalized_score or win_rate")
    return final


def read_metrics(folder: str | Path):
    """metrics.csv as a DataFrame sorted by updates, checked for the fixed columns and rows."""
    import pandas as pd   # here: the training loop imports this module for its writers

    path = Path(folder) / layout.METRICS
    if not path.exists():
        raise RunError(path, "is missing although final.json exists")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise RunError(path, f"cannot be read as CSV (truncated or corrupted: {e})") from None
    missing = [c for c in FIXED_COLUMNS if c not in df.columns]
    if missing:
        raise RunError(path, f"lacks the columns {', '.join(missing)} of the run-folder contract")
    if df.empty:
        raise RunError(path, "has no evaluation rows")
    # a file cut short parses as rows with empty cells, or without the last rows: both are damage
    written = [c for c in FIXED_COLUMNS[:5] if not pd.api.types.is_numeric_dtype(df[c]) or df[c].isna().any()]
    if written:
        raise RunError(path, f"has empty or non-numeric cells in {', '.join(written)} (truncated or corrupted)")
    final_path = path.parent / layout.FINAL
    if final_path.exists():
        last = _read_json(final_path).get("updates")
        if last is not None and df["updates"].max() != last:
            raise RunError(path, f"ends at update {df['updates'].max()} but {final_path} at {last} (truncated)")
    return df.sort_values("updates", kind="stable").reset_index(drop=True)


def read_masks(folder: str | Path) -> dict[str, np.ndarray]:
    path = Path(folder) / layout.MASKS
    if not path.exists():
        raise RunError(path, "is missing: Figure 4 needs mask snapshots, which only MACCA runs write",
                       "point `tables.figures.masks.algo` at a MACCA algorithm, or rerun the run")
    try:
        with np.load(path) as z:
            out = {k: z[k] for k in z.files}
    except Exception as e:   # zipfile.BadZipFile, EOFError, ValueError, zlib.error, ...: all mean damaged
        raise RunError(path, f"cannot be read as .npz (truncated or corrupted: {type(e).__name__}: {e})") from None
    for k in MASK_ARRAYS:
        if k not in out:
            raise RunError(path, f"has no array {k!r}")
    if out["s_to_r"].ndim != 3 or out["a_to_r"].ndim != 3 or len(out["updates"]) != len(out["s_to_r"]):
        raise RunError(path, f"has shapes s_to_r {out['s_to_r'].shape}, a_to_r {out['a_to_r'].shape}, "
                             f"updates {out['updates'].shape}; expected [K,N,S], [K,N,N*A], [K]")
    return out


def read_recovery(folder: str | Path) -> dict:
    path = Path(folder) / layout.RECOVERY
    recovery = _read_json(path)
    for k in RECOVERY_KEYS:
        if not isinstance(recovery.get(k), dict) or "mean" not in recovery[k]:
            raise RunError(path, f"`{k}` must be a mapping with per-agent values and `mean`")
    masks = recovery.get(MASK_RECOVERY)
    if masks is not None:
        from .maskscore import KINDS, MEASURES
        def scored(kind: str, m: str) -> bool:
            part = masks.get(kind) if isinstance(masks, dict) else None
            return isinstance(part, dict) and isinstance(part.get(m), dict) and "mean" in part[m]
        if not all(scored(kind, m) for kind in KINDS for m in MEASURES):
            raise RunError(path, f"`{MASK_RECOVERY}` must be null or hold {', '.join(MEASURES)} (each with `mean`) "
                                 f"for {' and '.join(KINDS)}")
    return recovery
