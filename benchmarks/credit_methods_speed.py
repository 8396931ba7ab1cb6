"""CPU ms per update of the credit-assignment backbones (paper Table 5: QMIX-CQL, SHAQ, SHAQ-CQL,
SQDDPG) at 2s3z-like shapes (5 agents, obs 127, state 120, 10 actions) on a random discrete batch
whose agent 0 is dead (only `stop` available), with the config's hyper-parameters for 2s3z.
Process CPU time per update (robust to other load on the machine), the median of `--rounds`
rounds of `--updates` updates, the algorithms measured in turn within each round.

    python benchmarks/credit_methods_speed.py [--threads 1] [--batch 256] [--rounds 5] [--updates 10]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from maccabench import config as C
from maccabench.envs.base import EnvSpec
from maccabench.registry import BACKBONES

ALGOS = ("qmix-cql", "shaq", "shaq-cql", "sqddpg")
N, O, S, A, STOP = 5, 127, 120, 10, 4


def discrete_batch(b: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    avail = torch.rand(b, N, A, generator=g) < 0.6
    avail[..., STOP] = True
    avail[:, 0] = False
    avail[:, 0, STOP] = True
    next_avail = torch.rand(b, N, A, generator=g) < 0.6
    next_avail[..., STOP] = True
    actions = torch.multinomial(avail.view(-1, A).float(), 1, generator=g).view(b, N)
    return {"obs": torch.randn(b, N, O, generator=g), "next_obs": torch.randn(b, N, O, generator=g),
            "actions": actions.float(), "avail_actions": avail, "next_avail_actions": next_avail,
            "state": torch.randn(b, S, generator=g), "next_state": torch.randn(b, S, generator=g),
            "rewards": torch.rand(b, 1, generator=g).expand(b, N),
            "terminals": (torch.rand(b, generator=g) < 0.05).float()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--updates", type=int, default=10)
    p.add_argument("--config", default="config/config.yaml")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    spec = EnvSpec("2s3z", "smax", "2s3z", tuple(f"ally_{i}" for i in range(N)), (O,) * N, (A,) * N, S, True, 100)
    cfg = C.load(args.config)
    batch = discrete_batch(args.batch)
    backbones = {a: BACKBONES[C.algorithm(cfg, a)["backbone"]].build(
        spec, C.backbone_config(cfg, a, "expert", "2s3z"), torch.device("cpu"), 0) for a in ALGOS}
    for bb in backbones.values():   # warm-up
        for _ in range(3):
            bb.update(batch)
    ms: dict[str, list[float]] = {a: [] for a in ALGOS}
    for _ in range(args.rounds):
        for a, bb in backbones.items():
            t = time.process_time()
            for _ in range(args.updates):
                bb.update(batch)
            ms[a].append((time.process_time() - t) / args.updates * 1000)
    print(f"batch {args.batch}, {torch.get_num_threads()} thread(s), 2s3z shapes (N {N}, obs {O}, state {S}, actions {A})")
    for a in ALGOS:
        m = statistics.median(ms[a])
        print(f"{a:9s} {m:6.1f} CPU ms/update  {1000 / m:6.1f} updates/s   rounds: {', '.join(f'{x:.1f}' for x in ms[a])}")


if __name__ == "__main__":
    main()
