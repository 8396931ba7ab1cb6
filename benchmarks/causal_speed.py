"""Training steps per second of MACCA's causal reward model on CN shapes (3 agents, joint state 54,
joint action 3 x 5), the paper's configuration: dynamic masks, psi_g and psi_r 3 x 256, batch 1024.

One training step = `updates_per_step` causal updates on the batch (default: one per agent, as
Algorithm 1) + one relabel (`assign`) + the backbone's update on the relabelled batch (the training
loop's step, for `--algo`, default macca-omar), on random tensors; `--causal-only` leaves the
backbone out.

    python benchmarks/causal_speed.py [--threads 2] [--seconds 10] [--precision fp32 bf16]
                                      [--updates-per-step 0 1] [--algo macca-omar] [--causal-only]

"ceiling" is what the arithmetic allows, measured on the spot with the same threads and under the
same load: the GFLOP/s of the model's representative matrix product (updates_per_second.matmul_ceiling) ([N*B, hidden] x [hidden,
hidden], psi_g's and psi_r's hidden layers, in the row's precision); "bound" = ceiling / GFLOP per
step, the steps/s of a causal model made of nothing but such products.

GFLOP are counted analytically from the layer shapes the code runs: 2 * in * out per linear layer
per sample, x3 for an update (forward + backward), x1 for the relabel. psi_g's first layer runs
once per sample (its input is the same for every agent; see maccabench.causal), psi_r's once per
agent and sample. The authors' code does the same updates plus one relabel forward per agent:
about 23 GFLOP per step in this counting (the issue's "about 24").
Anchors, on the 2-core development machine: the authors' MACCA-OMAR does 4.3 training steps/s (233
ms), their OMAR alone 13 (77 ms), so their causal part costs about 156 ms a step. "vs authors"
compares this benchmark's rows with 4.3 steps/s (for macca-omar: like for like; with --causal-only:
the causal model alone against their whole step, and "causal part" against their 156 ms).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from updates_per_second import (AUTHORS_STEPS_PER_S, CN, authors_causal_step_flops, build,  # noqa: E402
                                causal_step_flops, matmul_ceiling, measure, random_batch)   # same shapes, timing, FLOP counts

from maccabench import config as C  # noqa: E402
from maccabench.causal import CausalRewardModel  # noqa: E402
from maccabench.train import training_step  # noqa: E402

AUTHORS_MACCA = AUTHORS_STEPS_PER_S["macca-omar"]     # the authors' MACCA-OMAR step, causal model included
AUTHORS_CAUSAL_MS = 1000 / AUTHORS_MACCA - 1000 / AUTHORS_STEPS_PER_S["omar"]   # ~156 ms: their causal part


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--seconds", type=float, default=10.0, help="measuring time per row")
    p.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--updates-per-step", nargs="+", type=int, default=[0],
                   help="causal updates per step; 0 = one per agent (the paper's); 1 = the cheaper option")
    p.add_argument("--algo", default="macca-omar", help="a MACCA algorithm (key of `algorithms`)")
    p.add_argument("--causal-only", action="store_true", help="leave the backbone's update out of the step")
    p.add_argument("--quality", default="medium", help="per-quality hyper-parameters (Table 4)")
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    batch = random_batch(CN, args.batch, dev)
    cfg = C.load(args.config, {"tier": "paper"})
    print(f"CN shapes (N=3, S=54, joint action 15), batch {args.batch}, {args.threads} threads, "
          f"device {dev}, torch {torch.__version__}" + (", causal model only" if args.causal_only else f", {args.algo}"))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (steps/s suffer when other jobs run)")
    print(f"{'precision':<10}{'upd/step':>9}{'steps/s':>9}{'ms/step':>9}{'CPU ms/step':>12}{'GFLOP/step':>11}"
          f"{'GFLOP/s':>9}{'ceiling':>9}{'of it':>7}{'bound':>7}{'vs authors':>11}{'causal part':>12}{'steps':>7}")
    for upd in args.updates_per_step:
        for precision in args.precision:
            model, backbone = build(cfg, args.algo, args.quality, dev, {"precision": precision, "updates_per_step": upd})

            def step():
                if args.causal_only:
                    model.update(batch)
                    batch["rewards"] = model.assign(batch)
                else:
                    training_step(model, backbone, batch)

            sps, cpu_ms, n = measure(step, args.seconds, sync)
            # psi_g's and psi_r's hidden layers: one [N*B, hidden] x [hidden, hidden] product
            ceiling = matmul_ceiling(torch.bfloat16 if precision == "bf16" else torch.float32, model.device,
                                     hidden=model.cfg.hidden, rows=model.n * args.batch, n=1)
            gflop = causal_step_flops(model, args.batch) / 1e9
            print(f"{precision:<10}{model.updates_per_step:>9}{sps:>9.2f}{1000 / sps:>9.1f}{cpu_ms:>12.1f}{gflop:>11.2f}"
                  f"{gflop * sps:>9.0f}{ceiling:>9.0f}{gflop * sps / ceiling:>7.0%}{ceiling / gflop:>7.1f}"
                  f"{sps / AUTHORS_MACCA:>10.1f}x"
                  f"{'' if not args.causal_only else f'{AUTHORS_CAUSAL_MS * sps / 1000:.1f}x':>12}{n:>7}", flush=True)
    ref = authors_causal_step_flops(CausalRewardModel(CN, C.reward_config(cfg, args.algo, args.quality), "cpu", seed=0), args.batch) / 1e9
    print(f"reference: the authors' MACCA-OMAR, {AUTHORS_MACCA} steps/s on the 2-core development machine; "
          f"its causal part ~{AUTHORS_CAUSAL_MS:.0f} ms/step for {ref:.1f} GFLOP ({ref / AUTHORS_CAUSAL_MS * 1000:.0f} GFLOP/s). "
          f"GFLOP/s above count the causal model only; 'ceiling' is one representative matrix product's GFLOP/s "
          f"measured just after the row, 'of it' the fraction reached, 'bound' the causal-only steps/s that ceiling allows")


if __name__ == "__main__":
    main()
