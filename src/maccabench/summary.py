"""Figures of a results folder, printed as Markdown tables (behaviour training and datasets)."""
from __future__ import annotations

import json
from glob import escape, glob
from pathlib import Path

import pandas as pd

from . import layout
from .runfolder import SCORE_UNDEFINED


def datasets_summary(results: str | Path) -> str:
    results = Path(results)
    rows, undefined = [], []
    for s in sorted(map(Path, glob(layout.behavior_files(escape(str(results)), "*", "*")["summary"]))):   # Path order
        d = json.loads(s.read_text())
        why = d.get(SCORE_UNDEFINED, "not judged (a folder from before the check)")
        if why:
            undefined.append(f"- {d['env']} seed {d['seed']}: {why}")
        rows.append({"env": d["env"], "seed": d["seed"], "behaviour wall s": d["wall_s"],
                     "env steps": d["env_steps"], "env steps/s (behaviour)": d["env_steps_per_s"],
                     "updates/s": d["updates_per_s"], "return random": round(d["checkpoint_return"]["random"], 2),
                     "return medium": round(d["checkpoint_return"]["medium"], 2),
                     "return expert": round(d["checkpoint_return"]["expert"], 2),
                     "medium at step": d["checkpoint_env_steps"]["medium"],
                     "S_random": round(d["S_random"], 2), "S_expert": round(d["S_expert"], 2),
                     "normalised scores": "undefined" if why else "defined"})
    behaviour = pd.DataFrame(rows)
    rows = []
    for s in sorted(map(Path, glob(layout.stats_of(layout.dataset(escape(str(results)), "raw", "*", "*", "*"))))):
        d = json.loads(s.read_text())
        h5 = Path(layout.dataset(results, "raw", d["env"], d["quality"], d["seed"]))
        team = Path(layout.dataset(results, "team", d["env"], d["quality"], d["seed"]))
        r = d["behavior_return"]
        rows.append({"env": d["env"], "quality": d["quality"], "seed": d["seed"], "transitions": d["transitions"],
                     "episodes": r["episodes"], "return mean": round(r["mean"], 2), "return std": round(r["std"], 2),
                     "collect wall s": d["wall_s"],
                     "env steps/s (collect)": round(d["env_steps_per_s"], 1) if d["env_steps_per_s"] else "-",
                     "raw MB": round(h5.stat().st_size / 2**20, 1) if h5.exists() else "-",
                     "team MB": round(team.stat().st_size / 2**20, 1) if team.exists() else "-"})
    datasets = pd.DataFrame(rows)
    out = [f"# {results}", "", "## Behaviour learning", ""]
    out.append(behaviour.to_markdown(index=False) if len(behaviour) else "(none yet)")
    if undefined:
        out += ["", "Normalised scores undefined (tables show 'n/a (refs)'):", *undefined]
    out += ["", "## Datasets (returns: team return per episode, with collection noise)", ""]
    out.append(datasets.to_markdown(index=False) if len(datasets) else "(none yet)")
    return "\n".join(out)
