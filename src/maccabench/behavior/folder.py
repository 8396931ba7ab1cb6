"""Writing the behaviour folder (see the package docstring); summary.json last, so that its
presence means the folder is whole."""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from ..io import atomic_path, versions, write_json
from ..policies import save_policies
from .checkpoints import undefined_score_reason
from .online import OnlineRun


def write_folder(out_dir: Path, run: OnlineRun, chosen: dict[str, int], refs: dict[str, dict],
                 replay: dict[str, np.ndarray]) -> dict:
    """Write replay_medium.npz, curve.csv, policies.pt and summary.json; -> the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "replay_medium.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **replay)
    with atomic_path(out_dir / "curve.csv") as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(run.curve[0]))
            w.writeheader()
            w.writerows(run.curve)
    entry, learner = run.entry, run.learner
    undefined = undefined_score_reason(refs)
    if undefined:
        print(f"warning: normalised scores of {entry['name']} (behaviour seed {run.seed}) are undefined: {undefined}. "
              f"Datasets and runs made from this folder record why, and tables show 'n/a (refs)' instead of a number. "
              f"Fix: train the behaviour learner longer (tiers.<tier>.behavior_env_steps) or measure the references "
              f"over more episodes (tiers.<tier>.reference_episodes)", file=sys.stderr, flush=True)
    summary = {
        "env": entry["name"], "seed": run.seed, "agents": run.layout.agents, "team": entry["team"],
        "checkpoint_env_steps": {q: run.checkpoints[i][0] for q, i in chosen.items()},
        "checkpoint_return": {q: run.curve[i]["return_vs_final_opponents"] for q, i in chosen.items()},
        **({"checkpoint_win_rate": {q: run.curve[i]["win_rate_vs_final_opponents"] for q, i in chosen.items()}}
           if "win_rate_vs_final_opponents" in run.curve[0] else {}),
        "learner": run.hp["learner"],
        "S_random": refs["random"]["mean"], "S_expert": refs["expert"]["mean"], "references": refs,
        "normalized_score_undefined": undefined,   # None: defined (checkpoints.undefined_score_reason)
        "replay_medium_transitions": int(len(replay["obs"])),
        "env_steps": run.steps, "updates": learner.updates, "wall_s": round(run.wall_s, 1),
        "env_steps_per_s": round(run.steps / max(run.env_time, 1e-9), 1),
        "updates_per_s": round(learner.updates / max(run.update_time, 1e-9), 1),
        "versions": versions(),
    }
    save_policies(out_dir / "policies.pt", run.layout, run.hp["hidden"], entry,
                  {q: run.checkpoints[i][1] for q, i in chosen.items()})
    write_json(out_dir / "summary.json", summary)
    return summary
