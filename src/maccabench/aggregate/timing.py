"""Where a tier's time goes: the Snakemake benchmark files of a results folder, summed per stage.

Every rule that does real work writes `results/<tier>/benchmarks/<rule>/<wildcards...>.tsv`
(Snakemake's `benchmark:` directive: wall seconds `s` of the job). Summing them per rule, and
per algorithm for training and reward recovery, says which stage dominates a tier; divided by
the cores the tier ran on, it is the wall time the DAG could not have beaten with those cores.

    python -m maccabench.aggregate timing --tier quick [--cores 2]
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import layout
from ..errors import MaccabenchError


def job_times(results: str | Path) -> pd.DataFrame:
    """One row per benchmarked job: stage (the rule), detail (the algorithm for training and
    reward-recovery jobs, else the env), job (its wildcards' path), wall seconds."""
    root = Path(layout.benchmarks_dir(results))
    rows = []
    for tsv in sorted(root.rglob("*.tsv")):
        parts = tsv.relative_to(root).parts    # <rule>/<env>/...; train, recovery: <rule>/env/quality/algo/seedN.tsv
        seconds = pd.read_csv(tsv, sep="\t")["s"].iloc[-1]   # one row per repeat of the job: the last
        if parts[0] in ("train", "recovery") and len(parts) == 5:
            detail = parts[3]
        else:
            detail = parts[1] if len(parts) > 2 else ""
        rows.append({"stage": parts[0], "detail": detail, "job": "/".join(parts[1:])[: -len(".tsv")],
                     "seconds": float(seconds)})
    if not rows:
        raise MaccabenchError(f"no benchmark files under {root}. Fix: run the tier with Snakemake first "
                              f"(its rules write them), or pass the right --results/--tier")
    return pd.DataFrame(rows)


def stage_summary(jobs: pd.DataFrame, cores: int) -> pd.DataFrame:
    """Per stage and detail: jobs, job-seconds, mean seconds per job, share of all job-seconds,
    and job-seconds / cores (the least wall time those jobs need on that many cores)."""
    g = jobs.groupby(["stage", "detail"])["seconds"]
    out = pd.DataFrame({"jobs": g.size(), "job_s": g.sum(), "mean_s": g.mean()})
    total = out["job_s"].sum()
    out["share_%"] = 100 * out["job_s"] / total
    out["min_wall_min"] = out["job_s"] / cores / 60
    out.loc[("all", ""), :] = [len(jobs), total, jobs["seconds"].mean(), 100.0, total / cores / 60]
    return out.round({"job_s": 0, "mean_s": 1, "share_%": 1, "min_wall_min": 1}).astype({"jobs": int})
