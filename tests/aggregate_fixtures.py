"""Run folders written by the tests themselves through the training stage's own writers
(maccabench.runfolder: metrics.csv, masks.npz, final.json) with numbers the tests choose, so the
aggregator's output can be checked against hand-computed values. Test inputs, not results."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from maccabench import layout, runfolder

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
            rows = spec.get("rows", {}) if spec["kind"] in ("sweep", "variants") else {}   # hparams rows: fields
            names += spec.get("algos", []) + list(rows.values())
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
              masks: bool | None = None, tier: str | None = None, final_overrides: dict | None = None,
              score_undefined: str | None = None) -> Path:
    """One finished run whose score goes linearly from start_score to final_score over the
    evaluations (metric from the env's config entry); MACCA runs also log causal diagnostics
    (each going linearly between the given (start, end) values) and write masks.npz.
    `score_undefined`: the references were within noise (the reason), so the run has returns but
    no normalised scores, as the training stage writes it then."""
    metric = cfg["environments"][env]["metric"]
    causal = algo.startswith("macca") if causal is None else causal
    folder = Path(layout.run_dir(results_dir(cfg), env, quality, algo, seed))
    folder.mkdir(parents=True, exist_ok=True)
    updates = np.arange(0, UPDATES + 1, EVAL_EVERY)
    frac = updates / UPDATES
    score = start_score + frac * (final_score - start_score)
    s_random, s_expert = -50.0, -10.0
    if metric == "normalized_score":
        ret = s_random + score / 100 * (s_expert - s_random)
        win = [np.nan] * len(updates)
        norm = np.full(len(updates), np.nan) if score_undefined else score
    else:
        ret, win, norm = score * 10, score, np.full(len(updates), np.nan)
    rows = []
    for i, u in enumerate(updates):
        row = {"updates": int(u), "loop_steps": int(u) * 100, "wall_s": float(frac[i] * 3.0),
               "eval/return_mean": float(ret[i]), "eval/return_std": 1.5, "eval/episodes": 10,
               "eval/normalized_score": None if np.isnan(norm[i]) else float(norm[i]),
               "eval/win_rate": None if np.isnan(win[i]) else float(win[i]),
               "losses/critic": float(np.linspace(2, 1, len(updates))[i]),
               "losses/actor": float(np.linspace(0, -1, len(updates))[i])}
        if causal:
            for col, (start, end) in (("causal/loss", causal_loss), ("causal/rho_sr", rho_sr), ("causal/rho_ar", rho_ar)):
                row[col] = float(np.linspace(start, end, len(updates))[i])
        rows.append(row)
    runfolder.write_metrics(folder, rows)
    final = runfolder.final_record(env=env, quality=quality, algo=algo, seed=seed, tier=tier or cfg["tier"],
                                   metric=metric, table_score=table_score, rows=rows,
                                   s_random=s_random, s_expert=s_expert, wall_s=3.0, score_undefined=score_undefined)
    final.update(final_overrides or {})
    if masks if masks is not None else causal:
        n, obs, act = 3, 4, 2
        rng = np.random.default_rng(seed)
        k = 4
        runfolder.write_masks(folder, {"updates": np.linspace(0, UPDATES, k).astype(int),
                                       "s_to_r": rng.uniform(size=(k, n, n * obs)),
                                       "a_to_r": rng.uniform(size=(k, n, n * act))})
    if recovery is not None:
        (folder / layout.RECOVERY).write_text(json.dumps(
            {"pearson": {"per_agent": [recovery - 0.1, recovery, recovery + 0.1], "mean": recovery},
             "spearman": {"per_agent": [recovery] * 3, "mean": recovery - 0.05}, "n_samples": 500,
             "team_reward": {"pearson": {"per_agent": [0.9] * 3, "mean": 0.9},
                             "spearman": {"per_agent": [0.8] * 3, "mean": 0.8}}}))
    (folder / layout.RUN_CONFIG).write_text(json.dumps({"env": env, "quality": quality, "algo": algo, "seed": seed}))
    runfolder.write_final(folder, final)   # last, as the training stage does
    return folder


def fill_table(cfg: dict, table, scores) -> None:
    """Writes every run a resolved table reads; scores(env, quality, algo, seed) -> final score."""
    for key in table.runs():
        rec = 0.5 if table.kind == "recovery" else None
        write_run(cfg, key.env, key.quality, key.algo, key.seed, scores(key.env, key.quality, key.algo, key.seed),
                  recovery=rec)
