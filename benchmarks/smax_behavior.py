"""Behaviour learning on a SMAX map at a chosen budget: wall and CPU time, env steps/s, and the win
rates reached (per quality, and the first checkpoint at >= 0.9), from the real behaviour stage.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/smax_behavior.py --env 2s3z --env-steps 150000 --threads 1

The job is config.behavior_job of the config's `smoke` tier with the budget and evaluation
overridden here (no tier lists a SMAX map yet); the folder goes to --out.
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from maccabench import config as C
from maccabench.behavior import train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="2s3z")
    p.add_argument("--env-steps", type=int, default=150_000)
    p.add_argument("--eval-every", type=int, default=10_000)
    p.add_argument("--eval-episodes", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--out", default="/tmp/maccabench-smax-behavior")
    a = p.parse_args()
    cfg = C.load(a.config, {"tier": "smoke"})
    job = C.behavior_job(cfg, a.env, 0)
    job.update(env_steps=a.env_steps, eval_every=a.eval_every, eval_episodes=a.eval_episodes,
               reference_episodes=a.eval_episodes)
    wall, cpu = time.time(), time.process_time()
    s = train(job, a.out, progress=False, threads=a.threads)
    wall, cpu = time.time() - wall, time.process_time() - cpu
    with open(Path(a.out) / "curve.csv") as f:
        curve = list(csv.DictReader(f))
    first_09 = next((int(r["env_steps"]) for r in curve if float(r["win_rate_vs_final_opponents"]) >= 0.9), None)
    print(json.dumps({
        "env": a.env, "env_steps": s["env_steps"], "learner": s["learner"], "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1), "cpu_ms_per_env_step": round(1000 * cpu / s["env_steps"], 3),
        "env_steps_per_s (env stepping only)": s["env_steps_per_s"], "updates": s["updates"],
        "checkpoint_env_steps": s["checkpoint_env_steps"], "checkpoint_win_rate": s["checkpoint_win_rate"],
        "reference_win_rate": {q: s["references"][q]["win_rate"] for q in ("random", "expert")},
        "first_checkpoint_at_win_rate_0.9": first_09}, indent=1))


if __name__ == "__main__":
    main()
