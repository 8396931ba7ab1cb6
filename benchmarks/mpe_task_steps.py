"""Environment steps per second of the OMAR tasks (envs/omar_scenarios.py) next to the mpe2 task
each replaces, through the adapter's game with random actions (K copies side by side, as
behaviour learning steps them). Run on a quiet machine:

    PYTHONPATH=src python benchmarks/mpe_task_steps.py --seconds 10
"""
import argparse

import numpy as np
import pandas as pd

from env_steps import rate
from maccabench import config as C
from maccabench.envs.mpe import MPEGame

# OMAR task -> the config entry whose mpe2 task it replaces
PAIRS = {"omar_simple_spread": "cn", "simple_spread_assigned": "cn", "omar_simple_tag": "pp", "omar_simple_world": "world"}


def steps_per_second(task: str, task_args: dict, num_envs: int, seconds: float) -> float:
    game = MPEGame(task, task_args, num_envs)
    rng = np.random.default_rng(0)
    shape = (num_envs, len(game.agents), max(game.action_dims))

    def episode():
        game.reset([int(s) for s in rng.integers(1 << 30, size=num_envs)])
        for _ in range(game.episode_limit):
            game.step(rng.uniform(-1, 1, shape).astype(np.float32))
        return num_envs * game.episode_limit

    return rate(episode, seconds)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=10)
    args = p.parse_args()
    cfg = C.load("config/config.yaml", {"tier": "quick"})
    K = cfg["behavior"]["num_envs"]
    rows = []
    for task, env in PAIRS.items():
        entry = C.env_entry(cfg, env)
        ours = steps_per_second(task, {}, K, args.seconds)
        theirs = steps_per_second(entry["task"], entry["task_args"], K, args.seconds)
        rows.append({"task": task, "steps/s": round(ours), "replaces": entry["task"], "its steps/s": round(theirs),
                     "ratio": round(ours / theirs, 2)})
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
