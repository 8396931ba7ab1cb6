"""Updates per second of the discrete backbones (SMAX: algos/*_discrete.py) at a SMAX map's shapes
(allies, observation width, actions, joint state from envs/smax_maps.py), on random tensors with
random availability masks (about 60% of the actions available, "stop" always): the cost of one
`backbone.update(batch)` alone, without sampling, reward assignment or evaluation.

    python benchmarks/discrete_updates_per_second.py [--threads 1] [--batch 256] [--seconds 10]
                                                     [--maps 2s3z] [--backbones icql omar maicq]
                                                     [--precision fp32 bf16]

With `--threads 1` the CPU milliseconds per update are what an update costs on an idle core, also
when other jobs share the machine (`updates_per_second.measure`).
"""
from __future__ import annotations

import argparse
import dataclasses
import os

import torch

from maccabench import config as C
from maccabench.envs.base import EnvSpec
from maccabench.envs.smax_maps import MAPS, MOVE_ACTIONS, EPISODE_LIMIT
from maccabench.registry import BACKBONES
from updates_per_second import measure


def smax_spec(name: str) -> EnvSpec:
    m = MAPS[name]
    return EnvSpec(env=name, suite="smax", task=name, agents=tuple(m.agents), obs_dims=(m.obs_dim,) * m.allies,
                   action_dims=(m.n_actions,) * m.allies, state_dim=m.state_dim, discrete=True,
                   episode_limit=EPISODE_LIMIT)


def random_discrete_batch(spec: EnvSpec, B: int, device, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    N, O, A, S = spec.n_agents, spec.obs_dim, spec.action_dim, spec.state_dim

    def masks():
        m = torch.rand(B, N, A, generator=g) < 0.6
        m[..., MOVE_ACTIONS - 1] = True                     # "stop" is always available
        return m

    def pick(m):
        return torch.multinomial(m.float().view(-1, A), 1, generator=g).view(B, N)

    avail, navail = masks(), masks()
    b = {"obs": torch.randn(B, N, O, generator=g), "next_obs": torch.randn(B, N, O, generator=g),
         "actions": pick(avail), "next_actions": pick(navail), "avail_actions": avail, "next_avail_actions": navail,
         "next_action_valid": torch.rand(B, generator=g) > 0.01, "state": torch.randn(B, S, generator=g),
         "next_state": torch.randn(B, S, generator=g), "terminals": torch.zeros(B),
         "team_rewards": torch.randn(B, generator=g)}
    b["rewards"] = b["team_rewards"][:, None].expand(-1, N).contiguous()
    return {k: v.to(device) for k, v in b.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--maps", nargs="+", default=["2s3z"], choices=sorted(MAPS))
    p.add_argument("--backbones", nargs="+", default=list(BACKBONES))
    p.add_argument("--precision", nargs="+", choices=["fp32", "bf16"], default=["fp32"])
    p.add_argument("--quality", default="medium")
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    cfg = C.check(C.load(args.config))
    print(f"threads {args.threads}, batch {args.batch}, device {device}")
    print(f"{'map':10s} {'backbone':9s} {'precision':9s} {'updates/s':>10s} {'CPU ms/update':>14s}")
    for name in args.maps:
        spec = smax_spec(name)
        batch = random_discrete_batch(spec, args.batch, device)
        for backbone_name in args.backbones:
            algo = next(a for a, e in cfg["algorithms"].items() if e["backbone"] == backbone_name and e["rewards"] == "team")
            for precision in args.precision:
                hp = dataclasses.replace(C.backbone_config(cfg, algo, args.quality, name), precision=precision)   # the map's values
                backbone = BACKBONES[backbone_name].build(spec, hp, device, seed=0)
                rate, cpu_ms, _ = measure(lambda: backbone.update(batch), args.seconds, sync)
                print(f"{name:10s} {backbone_name:9s} {precision:9s} {rate:10.1f} {cpu_ms:14.2f}", flush=True)


if __name__ == "__main__":
    main()
