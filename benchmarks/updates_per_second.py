"""Updates per second of each backbone at the paper's batch size on CN shapes (3 agents,
obs 18, actions 5, joint state 54), on random tensors: the cost of `update()` alone, without
sampling or evaluation. One update = one gradient step of every agent's critic and actor.

    python benchmarks/updates_per_second.py [--threads 2] [--batch 1024] [--seconds 10]

For scale: the authors' OMAR-based code does about 13 training steps per second on this machine
(one step = one update of each of the 3 agents), without the causal model.
"""
from __future__ import annotations

import argparse
import os
import time

import torch
import yaml

from maccabench import config as C
from maccabench.algos import ALGOS
from maccabench.envs.base import EnvSpec

CN = EnvSpec(env="cn", suite="mpe", task="simple_spread_v3", agents=("agent_0", "agent_1", "agent_2"),
             obs_dims=(18, 18, 18), action_dims=(5, 5, 5), state_dim=54, discrete=False, episode_limit=25)


def random_batch(spec: EnvSpec, B: int, device, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    N, O, A, S = spec.n_agents, spec.obs_dim, spec.action_dim, spec.state_dim
    b = {"obs": torch.randn(B, N, O, generator=g), "next_obs": torch.randn(B, N, O, generator=g),
         "actions": torch.rand(B, N, A, generator=g) * 2 - 1, "next_actions": torch.rand(B, N, A, generator=g) * 2 - 1,
         "next_action_valid": torch.rand(B, generator=g) > 0.04, "state": torch.randn(B, S, generator=g),
         "next_state": torch.randn(B, S, generator=g), "terminals": torch.zeros(B), "team_rewards": torch.randn(B, generator=g)}
    b["rewards"] = b["team_rewards"][:, None].expand(-1, N).contiguous()
    return {k: v.to(device) for k, v in b.items()}


def measure(update, seconds: float, sync) -> tuple[float, float, int]:
    """(updates per wall-clock second, updates per CPU second of this process, updates run)."""
    for _ in range(3):
        update()
    sync()
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        update()
        n += 1
    sync()
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0), n


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--quality", default="medium", help="which per-quality hyper-parameters (Table 4) to use")
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.config) as f:
        cfg = yaml.safe_load(f)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    batch = random_batch(CN, args.batch, dev)
    print(f"CN shapes, batch {args.batch}, {args.threads} threads, device {dev}, torch {torch.__version__}")
    print(f"{'algorithm':<12}{'backbone':<10}{'updates/s':>10}{'ms/update':>11}{'per CPU-s':>11}{'updates':>9}")
    for algo, entry in cfg["algorithms"].items():
        if entry["backbone"] not in ALGOS or entry.get("rewards", "team") != "team":
            continue   # reward models other than the team reward are benchmarked with their own module
        hp = C.backbone_hp(cfg, algo, args.quality)
        backbone = ALGOS[entry["backbone"]](CN, hp, dev, seed=0)
        ups, per_cpu, n = measure(lambda: backbone.update(batch), args.seconds, sync)
        print(f"{algo:<12}{entry['backbone']:<10}{ups:>10.1f}{1000 / ups:>11.1f}{per_cpu:>11.1f}{n:>9}")
    print("reference: the authors' OMAR-based code, about 13 training steps/s on this machine")
    if os.getloadavg()[0] > os.cpu_count():
        print(f"note: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: other processes share them, so "
              "updates/s is low; `per CPU-s` (updates per second of this process's CPU time) is what an idle "
              "machine gives with 1 thread")


if __name__ == "__main__":
    main()
