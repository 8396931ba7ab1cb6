"""fp32 vs bf16 side by side for the causal reward model alone, on a real raw dataset.

Trains the paper-sized model (the config's `causal:` section at the file's quality) on the
team rewards of one raw file for each precision and seed, then on a held-out 20% prints what the
precision could change: how much of the team reward's variance the relabelled rewards leave
unexplained, the mask densities, and the correlation of r_hat_i with the hidden individual rewards.
Policy scores need the training loop: compare `precision: bf16` and `fp32` runs there.

    python benchmarks/causal_precision.py RAW.h5 [--steps 400] [--seeds 0 1 2] [--threads 1]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import yaml

from maccabench import data
from maccabench.causal import CausalRewardModel, reward_recovery
from maccabench.hparams import CausalConfig, at_quality, parse_hp


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("raw")
    p.add_argument("--steps", type=int, default=400, help="training steps (each: one causal update per agent)")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--config", default="config/config.yaml")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    raw = data.read(args.raw, kind="raw")
    with open(args.config) as f:
        hp = at_quality(yaml.safe_load(f)["causal"], raw.attrs["quality"])
    T = len(raw)
    order = np.random.default_rng(0).permutation(T)
    train_idx, test_idx = order[: int(0.8 * T)], order[int(0.8 * T):]
    tensors = {k: torch.as_tensor(raw.arrays[k], dtype=torch.float32) for k in ("state", "actions", "team_rewards")}
    test = data.Dataset(raw.path, {k: v[test_idx] for k, v in raw.arrays.items()}, raw.attrs, raw.spec)
    team_test = test.arrays["team_rewards"]
    print(f"{raw.path}: {T} transitions ({raw.spec.env}, {raw.attrs['quality']}), {args.steps} steps of batch "
          f"{args.batch}, held-out {len(test_idx)}")
    print(f"{'precision':<10}{'seed':>5}{'unexplained':>12}{'rho_sr':>8}{'rho_ar':>8}{'pearson':>9}{'spearman':>9}{'CPU s':>7}")
    for precision in ("fp32", "bf16"):
        rows = []
        for seed in args.seeds:
            model = CausalRewardModel(raw.spec, parse_hp(CausalConfig, {**hp, "precision": precision}, "causal"), "cpu", seed)
            g = np.random.default_rng(seed)
            c0 = time.process_time()
            for _ in range(args.steps):
                idx = torch.as_tensor(train_idx[g.integers(0, len(train_idx), args.batch)])
                model.update({k: v[idx] for k, v in tensors.items()})
            cpu = time.process_time() - c0
            batch = {k: torch.as_tensor(test.arrays[k], dtype=torch.float32) for k in ("state", "actions")}
            r_hat = model.assign(batch).numpy()
            unexplained = float(((r_hat.sum(1) - team_test) ** 2).mean() / team_test.var())
            rho = model.mask_densities(batch)
            rec = reward_recovery(model, test)
            rows.append((unexplained, rho["causal/rho_sr"], rho["causal/rho_ar"], rec["pearson"]["mean"], rec["spearman"]["mean"]))
            print(f"{precision:<10}{seed:>5}{rows[-1][0]:>12.4f}{rows[-1][1]:>8.3f}{rows[-1][2]:>8.3f}"
                  f"{rows[-1][3]:>9.3f}{rows[-1][4]:>9.3f}{cpu:>7.0f}", flush=True)
        m, s = np.mean(rows, 0), np.std(rows, 0)
        print(f"{precision:<10}{'mean':>5}" + "".join(f"{a:>{w}.3f}" for a, w in zip(m, (12, 8, 8, 9, 9)))
              + f"   (std {', '.join(f'{x:.3f}' for x in s)})")


if __name__ == "__main__":
    main()
