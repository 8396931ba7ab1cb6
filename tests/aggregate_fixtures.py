"""Run folders written by the tests themselves, exactly in the training stage's contract format
(final.json, metrics.csv, masks.npz, reward_recovery.json), with numbers the tests choose, so the
aggregator's output can be checked against hand-computed values. Test inputs, not results."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd

UPDATES = 100        # fixture runs: 100 updates, evaluated every 10
EVAL_EVERY = 10


def fixture_config(base: dict, root: Path, *, tier: str = "smoke", seeds=(0, 1, 2), envs=None, qualities=None) -> dict:
    """The project config pointed at `root`, with the tier's training seeds and every algorithm
    the tables name present in `algorithms:` (entries the real config already has are kept)."""
    cfg = copy.deepcopy(base)
    cfg["tier"] = tier
    cfg["results"] = str(root / "{tier}")
    t = cfg["tiers"][tier]
    t["train_seeds"] = list(seeds)
    if envs is not None:
        t["envs"] = list(envs)
    if qualities is not None:
        t["qualities"] = list(qualities)
    algos = cfg.setdefault("algorithms", {})
    names = [cfg["tables"]["figures"]["masks"]["algo"]]
    for spec in cfg["tables"].values():
        if isinstance(spec, dict) and "kind" in spec:
            names += spec.get("algos", []) + list(spec.get("rows", {}).values())
    for a in names:
        algos.setdefault(a, intended_entry(a))
    return cfg


def intended_entry(name: str) -> dict:
    """A registry entry for an algorithm the real config may not have yet (the aggregator only
    needs the name; the entry follows the training stage's format so the config validates)."""
    backbone = {"cql": "icql", "icq": "maicq"}.get(name.split("-")[1], "omar") if name.startswith("macca-") else "omar"
    if name.endswith("-gt"):
        return {"backbone": backbone, "rewards": "causal_gt" if name.startswith("macca") else "ground_truth"}
    entry = {"backbone": backbone, "rewards": "causal" if name.startswith("macca") else "team"}
    if backbone == "maicq" and entry["rewards"] != "team":
        entry["options"] = {"mixer": False}   # per-agent rewards: no mixer (see algos/maicq.py)
    return entry


def results_dir(cfg: dict) -> Path:
    return Path(cfg["results"].format(tier=cfg["tier"]))


def write_run(cfg: dict, env: str, quality: str, algo: str, seed: int, final_score: float, *,
              start_score: float = 0.0, causal: bool | None = None, rho_sr=(0.9, 0.3), rho_ar=(0.8, 0.5),
              causal_loss=(1.0, 0.1), table_score: str = "final", recovery: float | None = None,
              masks: bool | None = None, tier: str | None = None, final_overrides: dict | None = None) -> Path:
    """One finished run whose score goes linearly from start_score to final_score over the
    evaluations (metric from the env's config entry); MACCA runs also log causal diagnostics
    (each going linearly between the given (start, end) values) and write masks.npz."""
    metric = cfg["environments"][env]["metric"]
    causal = algo.startswith("macca") if causal is None else causal
    folder = results_dir(cfg) / "runs" / env / quality / algo / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    updates = np.arange(0, UPDATES + 1, EVAL_EVERY)
    frac = updates / UPDATES
    score = start_score + frac * (final_score - start_score)
    s_random, s_expert = -50.0, -10.0
    if metric == "normalized_score":
        ret = s_random + score / 100 * (s_expert - s_random)
        win = [np.nan] * len(updates)
        norm = score
    else:
        ret, win, norm = score * 10, score, np.full(len(updates), np.nan)
    df = pd.DataFrame({"updates": updates, "loop_steps": updates * 100, "wall_s": frac * 3.0,
                       "eval/return_mean": ret, "eval/return_std": np.full(len(updates), 1.5),
                       "eval/normalized_score": norm, "eval/win_rate": win,
                       "losses/critic": np.linspace(2, 1, len(updates)), "losses/actor": np.linspace(0, -1, len(updates))})
    if causal:
        df["causal/loss"] = np.linspace(*causal_loss, len(updates))
        df["causal/rho_sr"] = np.linspace(*rho_sr, len(updates))
        df["causal/rho_ar"] = np.linspace(*rho_ar, len(updates))
    df.to_csv(folder / "metrics.csv", index=False)

    def point(i):
        return {"updates": int(updates[i]), "return_mean": float(ret[i]), "return_std": 1.5,
                "normalized_score": None if np.isnan(norm[i]) else float(norm[i]),
                "win_rate": None if np.isnan(win[i]) else float(win[i])}

    best_i = int(np.argmax(score))
    final = {"env": env, "quality": quality, "algo": algo, "seed": seed, "tier": tier or cfg["tier"], "metric": metric,
             "final": point(len(updates) - 1), "best": point(best_i), "table_score": table_score,
             "S_random": s_random, "S_expert": s_expert, "updates": UPDATES, "wall_s": 3.0,
             "versions": {"python": "3.11"}}
    final.update(final_overrides or {})
    if masks if masks is not None else causal:
        n, obs, act = 3, 4, 2
        rng = np.random.default_rng(seed)
        k = 4
        np.savez(folder / "masks.npz", updates=np.linspace(0, UPDATES, k).astype(int),
                 s_to_r=rng.uniform(size=(k, n, n * obs)), a_to_r=rng.uniform(size=(k, n, n * act)))
    if recovery is not None:
        (folder / "reward_recovery.json").write_text(json.dumps(
            {"pearson": {"per_agent": [recovery - 0.1, recovery, recovery + 0.1], "mean": recovery},
             "spearman": {"per_agent": [recovery] * 3, "mean": recovery - 0.05}, "n_samples": 500,
             "team_reward": {"pearson": {"per_agent": [0.9] * 3, "mean": 0.9},
                             "spearman": {"per_agent": [0.8] * 3, "mean": 0.8}}}))
    (folder / "config.yaml").write_text(json.dumps({"env": env, "quality": quality, "algo": algo, "seed": seed}))
    (folder / "final.json").write_text(json.dumps(final))   # last, as the training stage does
    return folder


def fill_table(cfg: dict, table, scores) -> None:
    """Writes every run a resolved table reads; scores(env, quality, algo, seed) -> final score."""
    for key in table.runs():
        rec = 0.5 if table.kind == "recovery" else None
        write_run(cfg, key.env, key.quality, key.algo, key.seed, scores(key.env, key.quality, key.algo, key.seed),
                  recovery=rec)
