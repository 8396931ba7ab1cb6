"""Training steps per second of the six Table 1 algorithms at the paper's batch size on CN shapes
(3 agents, obs 18, actions 5, joint state 54), on random tensors: the cost of the training loop's
step (`maccabench.train.training_step`) alone, without sampling or evaluation. One step = the
reward assigner's update and relabel (MACCA: `updates_per_step` causal updates, one per agent by
default, and one relabelling pass; the team reward: nothing) + one gradient step of every agent's
critic and actor.

    python benchmarks/updates_per_second.py [--threads 2] [--batch 1024] [--seconds 10]
                                            [--precision fp32|bf16] [--algos icql macca-omar ...]
                                            [--nets config omar] [--backbone-precision fp32 bf16]

`--seeds-per-process 1 3 5` measures S training seeds of one cell stacked into one backbone of
S*N agents (the lever of issue 11, not yet in the training loop), for the algorithms where that is
the same maths (only the random draws differ): an independent-agents backbone (registry.BackboneEntry.independent_agents: I-CQL, OMAR) on a
reward every agent shares (the team reward); "seed-steps/s" = S x steps/s, the training seeds'
steps a process makes per second.

`--nets omar` measures with OMAR's networks (input BatchNorm, actors' last layer in +-3e-3:
`algos.common.OMAR_NETWORKS`) in place of the config's `training.common` network options;
`--nets config omar` measures both and prints their ratio. `--backbone-precision fp32 bf16` measures
every backbone's update in each precision (`training.common.precision`: bf16 autocast) and prints the ratio.

Anchors, measured on the 2-core development machine with the paper's configuration: the authors'
OMAR does about 13 steps/s, their MACCA-OMAR 4.3 ("vs authors" compares those two rows with them).
"causal GFLOP/s" counts the causal model's matrix products only (see `causal_step_flops`);
"backbone GFLOP/s" the backbone update's (see `backbone_update_flops`), beside the fp32 (and bf16)
matrix-product ceiling measured on the spot at the critics' shape (`matmul_ceiling`).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time

import torch

from maccabench import config as C
from maccabench.algos.common import OMAR_NETWORKS
from maccabench.causal import CausalRewardModel
from maccabench.envs.base import EnvSpec
from maccabench.registry import ASSIGNERS, BACKBONES
from maccabench.rewards import RewardContext, make_assigner
from maccabench.train import training_step

CN = EnvSpec(env="cn", suite="mpe", task="simple_spread_v3", agents=("agent_0", "agent_1", "agent_2"),
             obs_dims=(18, 18, 18), action_dims=(5, 5, 5), state_dim=54, discrete=False, episode_limit=25)
AUTHORS_STEPS_PER_S = {"omar": 13.0, "macca-omar": 4.3}


def random_batch(spec: EnvSpec, B: int, device, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    N, O, A, S = spec.n_agents, spec.obs_dim, spec.action_dim, spec.state_dim
    b = {"obs": torch.randn(B, N, O, generator=g), "next_obs": torch.randn(B, N, O, generator=g),
         "actions": torch.rand(B, N, A, generator=g) * 2 - 1, "next_actions": torch.rand(B, N, A, generator=g) * 2 - 1,
         "next_action_valid": torch.rand(B, generator=g) > 0.04, "state": torch.randn(B, S, generator=g),
         "next_state": torch.randn(B, S, generator=g), "terminals": torch.zeros(B), "team_rewards": torch.randn(B, generator=g)}
    b["rewards"] = b["team_rewards"][:, None].expand(-1, N).contiguous()
    return {k: v.to(device) for k, v in b.items()}


def measure(step, seconds: float, sync) -> tuple[float, float, int]:
    """(steps per wall-clock second, CPU milliseconds per step, steps run). With one thread the CPU
    time is what a step costs on an idle core, also when other jobs share the machine."""
    for _ in range(3):
        step()
    sync()
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    sync()
    return n / (time.perf_counter() - t0), 1000 * (time.process_time() - c0) / n, n


def causal_forward_flops(model, batch_size: int, shared_first_layer: bool = True) -> float:
    """FLOPs of one forward pass of psi_g and psi_r for every agent on a batch: 2 * in * out per
    linear layer per sample. psi_g's first layer runs once per sample when its input is shared by
    the agents (as maccabench.causal does); the authors' code runs it once per agent."""
    n, d_in, h, layers = model.n, model.d_in, model.cfg.hidden, model.cfg.layers
    body = 2 * h * h * (layers - 1)
    per_agent = 2 * (d_in + n) * h + body + 2 * h             # psi_r on [masked s, masked a, one-hot id]
    shared = 0.0
    if model.psi_g is not None:
        if shared_first_layer:
            shared = 2 * d_in * h
            per_agent += body + 2 * h * d_in
        else:
            per_agent += 2 * (d_in + n) * h + body + 2 * h * d_in
    return batch_size * (shared + n * per_agent)


def causal_step_flops(model, batch_size: int) -> float:
    """One training step of the causal model: updates_per_step x (forward + backward = 3 forwards)
    + one relabelling forward."""
    fwd = causal_forward_flops(model, batch_size)
    return model.updates_per_step * 3 * fwd + fwd


def authors_causal_step_flops(model, batch_size: int) -> float:
    """The authors' step: one update and one relabelling forward per agent."""
    fwd = causal_forward_flops(model, batch_size, shared_first_layer=False)
    return model.n * 3 * fwd + model.n * fwd


def mlp_flops(d_in: int, hidden: int, d_out: int, layers: int = 2) -> int:
    """Matrix-product FLOPs of one forward pass of an `AgentMLP` on one row, one agent: 2 * in * out per layer."""
    dims = [d_in] + [hidden] * layers + [d_out]
    return sum(2 * a * b for a, b in zip(dims[:-1], dims[1:]))


def backbone_update_flops(backbone, B: int) -> float:
    """Matrix-product FLOPs of one backbone update as the backbones compute it: a pass with a
    backward counts 3 forwards; the sampled passes (CQL, OMAR's zeroth-order samples) run the first
    layer's observation part once per state (`AgentMLP.forward_sampled`)."""
    c, n, O, A = backbone.cfg, backbone.spec.n_agents, backbone.spec.obs_dim, backbone.spec.action_dim
    H = c.hidden
    actor, critic = mlp_flops(O, H, A), mlp_flops(O + A, H, 1)

    def sampled(M: int) -> int:   # one state's M samples through a critic
        return 2 * O * H + M * (critic - 2 * O * H)

    if hasattr(backbone, "q1"):                      # I-CQL and OMAR
        per_state = actor + 2 * critic                              # targets on o'
        per_state += 3 * 2 * critic + 3 * 2 * sampled(c.cql_samples)  # twin critics: data, CQL samples
        per_state += 3 * actor + 3 * critic                         # actor through Q^1
        if hasattr(c, "omar_iters"):
            per_state += c.omar_iters * sampled(c.omar_samples)     # zeroth-order passes, no grad
    else:                                            # MA-ICQ (the mixer's small products left out)
        per_state = actor + critic + 3 * critic + 3 * actor + 2 * critic
    return float(n * B * per_state)


def matmul_ceiling(dtype: torch.dtype, device, hidden: int = 64, rows: int = 10240, n: int = 3) -> float:
    """GFLOP/s of a batched [n, rows, hidden] x [n, hidden, hidden] product (a critic's hidden layer
    on one update's CQL samples), measured now: the ceiling of the backbones' arithmetic."""
    x, w = (torch.randn(n, rows, hidden, device=device, dtype=dtype), torch.randn(n, hidden, hidden, device=device, dtype=dtype))
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    best = float("inf")
    for _ in range(5):
        sync()
        t0 = time.perf_counter()
        for _ in range(10):
            torch.bmm(x, w)
        sync()
        best = min(best, (time.perf_counter() - t0) / 10)
    return 2 * n * rows * hidden * hidden / best / 1e9


def stacked(spec: EnvSpec, seeds: int) -> EnvSpec:
    """`seeds` copies of the team as one team of seeds x N agents (independent-agents backbones)."""
    return dataclasses.replace(spec, agents=tuple(f"seed{s}_{a}" for s in range(seeds) for a in spec.agents),
                               obs_dims=spec.obs_dims * seeds, action_dims=spec.action_dims * seeds)


def stack_problem(cfg: dict, algo: str) -> str | None:
    """Why S seeds of `algo` are not exactly one backbone of S*N agents, or None."""
    entry = cfg["algorithms"][algo]
    if not BACKBONES[entry["backbone"]].independent_agents:
        return f"backbone {entry['backbone']} couples the agents (mixer)"
    if not ASSIGNERS[entry["rewards"]].shared:
        return f"reward assigner {entry['rewards']} is joint over the team"
    return None


def build(cfg: dict, algo: str, quality: str, device, reward_options: dict | None = None,
          backbone_options: dict | None = None, spec: EnvSpec = CN):
    """(assigner, backbone) of `algo` as the training loop builds them, on `spec`'s shapes (CN),
    with `backbone_options` replacing configured backbone hyper-parameters."""
    entry = cfg["algorithms"][algo]
    backbone_cfg = dataclasses.replace(C.backbone_config(cfg, algo, quality), **(backbone_options or {}))
    backbone = BACKBONES[entry["backbone"]].build(spec, backbone_cfg, device, seed=0)
    config = C.reward_config(cfg, algo, quality)
    if config is not None:   # assigners with hyper-parameters (the causal model): the command line's options
        config = dataclasses.replace(config, **(reward_options or {}))
    assigner = make_assigner(entry["rewards"], RewardContext(spec, config, device, 0, dataset=None))
    return assigner, backbone


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--algos", nargs="+", help="keys of `algorithms` (default: the paper tier's six)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="of the causal model")
    p.add_argument("--quality", default="medium", help="which per-quality hyper-parameters (Table 4) to use")
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--nets", nargs="+", choices=["config", "omar"], default=["config"],
                   help="network options: the config's, OMAR's (input BatchNorm, last-layer init), or both")
    p.add_argument("--backbone-precision", nargs="+", choices=["fp32", "bf16"], default=["fp32"],
                   help="`precision` of the backbones' updates (training.common; the causal model's is --precision)")
    p.add_argument("--seeds-per-process", nargs="+", type=int, default=[1], metavar="S",
                   help="training seeds stacked into one backbone (exact for independent agents on a shared reward)")
    args = p.parse_args()
    args.seeds_per_process = sorted({1, *args.seeds_per_process})   # S=1 always: the ratios compare with it
    torch.set_num_threads(args.threads)
    cfg = C.load(args.config, {"tier": "paper"})
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    print(f"CN shapes, batch {args.batch}, {args.threads} threads, device {dev}, torch {torch.__version__}, "
          f"causal model in {args.precision}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"matrix-product ceiling at the critics' shape ([3, 10240, 64] x [64, 64]): "
          f"fp32 {matmul_ceiling(torch.float32, dev):.0f} GFLOP/s, bf16 {matmul_ceiling(torch.bfloat16, dev):.0f} GFLOP/s")
    print(f"{'algorithm':<12}{'backbone':<9}{'rewards':<8}{'nets':<7}{'bb':<5}{'S':>3}{'steps/s':>9}{'seed-steps/s':>13}"
          f"{'ms/step':>9}{'CPU ms':>8}{'bb GFLOP':>9}{'bb GFLOP/s':>11}{'causal GFLOP':>13}{'causal GFLOP/s':>15}"
          f"{'vs authors':>11}{'steps':>7}")
    measured = {}
    for algo in args.algos or C.tier(cfg)["algos"]:
        problem = stack_problem(cfg, algo)
        for nets, zo, S in ((nets, zo, S) for nets in args.nets for zo in args.backbone_precision
                            for S in args.seeds_per_process):
            if S > 1 and problem:
                print(f"{algo:<12}{'':<29}{S:>3}  not stackable: {problem}")
                continue
            options = {**(OMAR_NETWORKS if nets == "omar" else {}), "precision": zo}
            spec = stacked(CN, S)
            assigner, backbone = build(cfg, algo, args.quality, dev, {"precision": args.precision}, options, spec)
            batch = random_batch(spec, args.batch, dev)
            sps, cpu_ms, n = measure(lambda: training_step(assigner, backbone, batch), args.seconds, sync)
            measured[algo, nets, zo, S] = cpu_ms
            gflop = causal_step_flops(assigner, args.batch) / 1e9 if isinstance(assigner, CausalRewardModel) else None
            authors = AUTHORS_STEPS_PER_S.get(algo)
            bb_gflop = backbone_update_flops(backbone, args.batch) / 1e9
            print(f"{algo:<12}{cfg['algorithms'][algo]['backbone']:<9}{cfg['algorithms'][algo]['rewards']:<8}"
                  f"{nets:<7}{zo:<5}{S:>3}{sps:>9.2f}{S * sps:>13.2f}{1000 / sps:>9.1f}{cpu_ms:>8.1f}{bb_gflop:>9.2f}"
                  f"{bb_gflop * sps:>11.1f}{'' if gflop is None else f'{gflop:.2f}':>13}"
                  f"{'' if gflop is None else f'{gflop * sps:.0f}':>15}"
                  f"{'' if authors is None else f'{S * sps / authors:.1f}x':>11}{n:>7}")
            if S > 1 and (algo, nets, zo, 1) in measured:
                print(f"{'':<12}S={S} stacked / S=1: {S * measured[algo, nets, zo, 1] / cpu_ms:.2f}x seed-steps per CPU second")
        first = args.backbone_precision[0]
        if len(args.nets) == 2:
            print(f"{'':<12}OMAR's networks / config's: {measured[algo, 'omar', first, 1] / measured[algo, 'config', first, 1]:.2f}x CPU ms")
        if len(args.backbone_precision) == 2:
            for nets in args.nets:
                print(f"{'':<12}{nets} nets, fp32 / bf16 backbone update: "
                      f"{measured[algo, nets, 'fp32', 1] / measured[algo, nets, 'bf16', 1]:.2f}x faster (CPU ms; robust to other load)")
    print("reference: the authors' code on this machine, OMAR ~13 steps/s, MACCA-OMAR 4.3 steps/s")


if __name__ == "__main__":
    main()
