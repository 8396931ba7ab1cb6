"""Training steps per second of MACCA's causal reward model on CN shapes (3 agents, joint state 54,
joint action 3 x 5), the paper's configuration: dynamic masks, psi_g and psi_r 3 x 256, batch 1024.

One training step = `updates_per_step` causal updates on the batch (default: one per agent, as
Algorithm 1) + one relabel (`assign`), on random tensors. With `--backbone omar` (or icql, maicq)
the step also runs that backbone's update on the relabelled batch: the full MACCA step.

    python benchmarks/causal_speed.py [--threads 2] [--seconds 10] [--precision fp32 bf16]
                                      [--updates-per-step 0 1] [--backbone omar]

GFLOP are counted analytically from the layer shapes the code runs: 2 * in * out per linear layer
per sample, x3 for an update (forward + backward), x1 for the relabel. psi_g's first layer runs
once per sample (its input is the same for every agent; see maccabench.causal), psi_r's once per
agent and sample. The authors' code does the same updates plus one relabel forward per agent:
about 23 GFLOP per step in this counting (the issue's "about 24").
Anchors, on the 2-core development machine: the authors' MACCA-OMAR does 4.3 training steps/s (233
ms), their OMAR alone 13 (77 ms), so their causal part costs about 156 ms a step. "vs authors"
compares this benchmark's rows with 4.3 steps/s (with --backbone: like for like; without: the
causal model alone against their whole step, and "causal part" against their 156 ms).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from updates_per_second import CN, random_batch  # noqa: E402  (same shapes and batches)

from maccabench.causal import CausalRewardModel  # noqa: E402

AUTHORS_STEPS_PER_S = 4.3           # the authors' MACCA-OMAR training step, causal model included
AUTHORS_OMAR_STEPS_PER_S = 13.0     # the authors' OMAR step alone (benchmarks/updates_per_second.py)
AUTHORS_CAUSAL_MS = 1000 / AUTHORS_STEPS_PER_S - 1000 / AUTHORS_OMAR_STEPS_PER_S   # ~156 ms: the causal part


def measure(step, seconds: float, sync) -> tuple[float, float, int]:
    """(steps per wall second, CPU milliseconds per step, steps). With one thread the CPU time is
    what the step costs on an idle core, also when other jobs share the machine."""
    for _ in range(3):
        step()
    sync()
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    sync()
    return n / (time.perf_counter() - t0), 1000 * (time.process_time() - c0) / n, n


def forward_flops(model: CausalRewardModel, batch_size: int, shared_first_layer: bool = True) -> float:
    """FLOPs of one forward pass of psi_g and psi_r for every agent on a batch."""
    n, d_in, h, layers = model.n, model.d_in, model.cfg.hidden, model.cfg.layers
    body = 2 * h * h * (layers - 1)
    per_agent = 2 * (d_in + n) * h + body + 2 * h             # psi_r on [masked s, masked a, one-hot id]
    shared = 0.0
    if model.psi_g is not None:
        if shared_first_layer:
            shared = 2 * d_in * h                              # once per sample
            per_agent += body + 2 * h * d_in
        else:
            per_agent += 2 * (d_in + n) * h + body + 2 * h * d_in
    return batch_size * (shared + n * per_agent)


def step_flops(model: CausalRewardModel, batch_size: int) -> float:
    fwd = forward_flops(model, batch_size)
    return model.updates_per_step * 3 * fwd + fwd


def authors_step_flops(model: CausalRewardModel, batch_size: int) -> float:
    fwd = forward_flops(model, batch_size, shared_first_layer=False)
    return model.n * 3 * fwd + model.n * fwd                   # one update and one relabel per agent


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--seconds", type=float, default=10.0, help="measuring time per row")
    p.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--updates-per-step", nargs="+", type=int, default=[0],
                   help="causal updates per step; 0 = one per agent (the paper's); 1 = the cheaper option")
    p.add_argument("--backbone", default=None, help="also run this backbone's update (full MACCA step)")
    p.add_argument("--quality", default="medium", help="per-quality hyper-parameters of the backbone")
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    batch = random_batch(CN, args.batch, dev)
    backbone = None
    if args.backbone:
        from maccabench import config as C
        from maccabench.algos import make_backbone
        with open(args.config) as f:
            cfg = yaml.safe_load(f)
        algo = next(a for a, e in cfg["algorithms"].items()
                    if e["backbone"] == args.backbone and e.get("rewards", "team") == "team")
        backbone = make_backbone(args.backbone, CN, C.backbone_hp(cfg, algo, args.quality), dev, seed=0)

    print(f"CN shapes (N=3, S=54, joint action 15), batch {args.batch}, {args.threads} threads, "
          f"device {dev}, torch {torch.__version__}" + (f", with backbone {args.backbone}" if backbone else ""))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (steps/s suffer when other jobs run)")
    print(f"{'precision':<10}{'upd/step':>9}{'steps/s':>9}{'ms/step':>9}{'GFLOP/step':>11}{'GFLOP/s':>9}"
          f"{'vs authors':>11}{'causal part':>12}{'CPU ms/step':>12}{'steps':>7}")
    for upd in args.updates_per_step:
        for precision in args.precision:
            model = CausalRewardModel(CN, {"precision": precision, "updates_per_step": upd}, dev, seed=0)

            def step():
                model.update(batch)
                batch["rewards"] = model.assign(batch)
                if backbone is not None:
                    backbone.update(batch)

            sps, cpu_ms, n = measure(step, args.seconds, sync)
            gflop = step_flops(model, args.batch) / 1e9
            print(f"{precision:<10}{model.updates_per_step:>9}{sps:>9.2f}{1000 / sps:>9.1f}{gflop:>11.2f}"
                  f"{gflop * sps:>9.0f}{sps / AUTHORS_STEPS_PER_S:>10.1f}x"
                  f"{'' if backbone else f'{AUTHORS_CAUSAL_MS * sps / 1000:.1f}x':>12}{cpu_ms:>12.1f}{n:>7}")
    ref = authors_step_flops(CausalRewardModel(CN, {}, "cpu", seed=0), args.batch) / 1e9
    print(f"reference: the authors' MACCA-OMAR, {AUTHORS_STEPS_PER_S} steps/s on the 2-core development machine; "
          f"its causal part ~{AUTHORS_CAUSAL_MS:.0f} ms/step for {ref:.1f} GFLOP ({ref / AUTHORS_CAUSAL_MS * 1000:.0f} GFLOP/s). "
          f"GFLOP/s above count the causal model only")


if __name__ == "__main__":
    main()
