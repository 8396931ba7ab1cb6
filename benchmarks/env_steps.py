"""Environment steps per second, as collection sees them, for every env of a tier.

Prints one row per env: PettingZoo's parallel wrapper with random actions (for scale), the
adapter's game with random actions, and collection as the pipeline runs it (policy inference for
K parallel envs, exploration noise, frozen opponents, recording). Run on a quiet machine:

    python benchmarks/env_steps.py --tier quick --seconds 10

`--smax` instead times the SMAX adapter (envs/smax.py) on each map of envs/smax_maps.py with 1, 64
and 256 envs stepped together (random available actions, ended episodes reset as collection does),
after compiling: env steps/s and CPU ms per env step.

    python benchmarks/env_steps.py --smax --seconds 10 --threads 1
"""
import argparse
import importlib
import os
import time

import numpy as np
import pandas as pd
import torch

from maccabench import config as C
from maccabench.envs import make_game, make_team_env
from maccabench.nets import AgentMLP
from maccabench.rollout import actor_policy, run_episodes


def rate(fn, seconds):
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        n += fn()
    return n / (time.perf_counter() - t0)


def smax_rates(seconds: float, num_envs=(1, 64, 256)):
    from maccabench.envs import smax_maps
    from maccabench.registry import SUITES
    rows = []
    for task in smax_maps.MAPS:
        for K in num_envs:
            game = SUITES["smax"].make_game(task, {}, K)
            rng = np.random.default_rng(0)
            game.reset(list(range(K)))
            episodes = [K]

            def step():
                act = (rng.random(game.avail_actions().shape) * game.avail_actions()).argmax(-1)
                _, _, term, trunc = game.step(act)
                for k in np.flatnonzero(term | trunc):
                    game.reset_one(k, episodes[0])
                    episodes[0] += 1
                return K

            t0 = time.perf_counter()
            step(), step()                                  # compiles (or loads from the cache)
            compile_s = time.perf_counter() - t0
            c0 = time.process_time()
            t0 = time.perf_counter()
            n = 0
            while time.perf_counter() - t0 < seconds:
                n += step()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            rows.append({"map": task, "envs": K, "env steps/s": round(n / wall),
                         "CPU ms per env step": round(1e3 * cpu / n, 4), "first two steps (s)": round(compile_s, 1)})
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tier", default="quick")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--smax", action="store_true", help="time the SMAX maps instead of the tier's envs")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.smax:
        if args.threads == 1:   # before jax starts: XLA's CPU backend on one thread
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                       " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
        print(pd.DataFrame(smax_rates(args.seconds)).to_markdown(index=False))
        return
    cfg = C.load("config/config.yaml", {"tier": args.tier})
    K = cfg["behavior"]["num_envs"]
    rows = []
    for name in C.tier(cfg)["envs"]:
        entry = C.env_entry(cfg, name)
        rng = np.random.default_rng(0)

        pz = importlib.import_module(f"mpe2.{entry['task']}").parallel_env(continuous_actions=True, **entry["task_args"])
        pz.reset(seed=0)

        def pz_episode():
            pz.reset(seed=int(rng.integers(1 << 30)))
            n = 0
            while pz.agents:
                pz.step({a: pz.action_space(a).sample() for a in pz.agents})
                n += 1
            return n

        game = make_game(entry, K)

        def game_episode():
            game.reset([int(s) for s in rng.integers(1 << 30, size=K)])
            A = max(game.action_dims)
            for _ in range(game.episode_limit):
                game.step(rng.uniform(-1, 1, (K, len(game.agents), A)).astype(np.float32))
            return K * game.episode_limit

        n_all, O, A = len(game.agents), max(game.obs_dims), max(game.action_dims)
        actors = AgentMLP(n_all, O, cfg["behavior"]["matd3"]["hidden"], A, out_act="tanh")
        mask = np.ones((n_all, A), np.float32)
        team_idx = [game.agents.index(a) for a in entry["team"]]
        other_idx = [i for i in range(n_all) if i not in team_idx]
        others = actor_policy(actors.subset(other_idx), mask[other_idx]) if other_idx else None
        env = make_team_env(entry, K, others)
        policy = actor_policy(actors.subset(team_idx), env.spec.action_mask())

        def collect_batch():
            ep = run_episodes(env, policy, K, int(rng.integers(1 << 30)), noise=cfg["collection"]["noise"], record=True)
            return len(ep.arrays["obs"])

        rows.append({"env": name, "agents (all)": n_all,
                     "pettingzoo parallel_env steps/s": round(rate(pz_episode, args.seconds)),
                     "adapter game steps/s": round(rate(game_episode, args.seconds)),
                     "collection steps/s": round(rate(collect_batch, args.seconds))})
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
