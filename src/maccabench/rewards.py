"""Reward assigners: which reward each agent's TD target uses.

Offline datasets hold only the team reward R_t. Before every backbone update the training loop
asks a *reward assigner* for per-agent rewards [B, N] and puts them in `batch["rewards"]`:

    assigner.update(batch)                       # the assigner trains itself (no-op for TeamReward)
    batch["rewards"] = assigner.assign(batch)
    backbone.update(batch)

`TeamReward` hands every agent the team reward (I-CQL, OMAR, MA-ICQ). MACCA's causal model
(`maccabench.causal`) is another assigner, so `macca-omar` is the OMAR backbone with the causal
assigner: a config entry under `algorithms:`, not a copy of the backbone.

Controls that separate credit assignment from reward scale (MACCA's rewards sum to R, so they sit
near R / N, while the baselines train on R): `team_mean` hands every agent R / N (same scale as
MACCA's, no credit), `random_split` a fresh random split of R per sample (sums to R like MACCA's,
credit-free); MACCA's rewards times N are the causal assigner's `times_n_agents` option.

Assigners are registered in `maccabench.registry.ASSIGNERS`, which declares the optional hooks
each one has (the loop calls only those):
  pretrain(sample_batch, planned_steps)  `pretrains`: once before the first update of a fresh run
  mask_snapshot(probe)                   `mask_snapshots`: at every evaluation -> (s_to_r [N, S],
                                         a_to_r [N, N*A]) for masks.npz
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from .envs.base import EnvSpec
from .registry import ASSIGNERS


class RewardAssigner(Protocol):
    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]: ...
    def assign(self, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...   # [B, N]
    def state_dict(self) -> dict: ...
    def load_state_dict(self, d: dict) -> None: ...


# the random split's generator: seed + this, a stream apart from the batch sampler's (seeded `seed`)
RANDOM_SPLIT_SEED_OFFSET = 50_000


class TeamReward:
    """Every agent receives the team reward R divided by `divisor` (1: R; N: R / N)."""

    def __init__(self, spec: EnvSpec, divisor: int = 1):
        self.n = spec.n_agents
        self.divisor = divisor

    def update(self, batch) -> dict[str, float]:
        return {}

    def assign(self, batch) -> torch.Tensor:
        r = batch["team_rewards"]
        if self.divisor != 1:
            r = r / self.divisor
        return r.unsqueeze(1).expand(-1, self.n)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, d: dict) -> None:
        pass


class RandomSplit:
    """A credit-free split of the team reward: sample b's agents get R_b * w_b with w_b drawn from
    Dirichlet(1, ..., 1), afresh for every sample at every call of `assign` (once per update), so
    the rewards sum to R and carry no information about who earned it. Its own generator, on the
    CPU (the same splits on every device), is seeded from the run seed and checkpointed with the
    assigner, so a run and its resumption draw the same splits."""

    def __init__(self, spec: EnvSpec, seed: int):
        self.n = spec.n_agents
        self.gen = torch.Generator().manual_seed(seed + RANDOM_SPLIT_SEED_OFFSET)

    def weights(self, batch_size: int) -> torch.Tensor:
        """[B, N] Dirichlet(1, ..., 1) draws: i.i.d. Exp(1) (= Gamma(1)) variables, normalised."""
        e = torch.empty(batch_size, self.n).exponential_(generator=self.gen)
        return e / e.sum(dim=1, keepdim=True)

    def update(self, batch) -> dict[str, float]:
        return {}

    def assign(self, batch) -> torch.Tensor:
        r = batch["team_rewards"]
        return r.unsqueeze(1) * self.weights(len(r)).to(r.device)

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, d: dict) -> None:
        self.gen.set_state(d["gen"])


@dataclass(frozen=True)
class RewardContext:
    """What an assigner may be built from. `config` is its parsed hyper-parameters (the registry
    entry's dataclass; None for assigners that take none). `raw_dataset` is set only for assigners
    that read the hidden individual rewards (ground-truth ablations); every other one sees team
    data only."""
    spec: EnvSpec
    config: object
    device: torch.device
    seed: int
    dataset: object                 # the team data.Dataset being trained on
    raw_dataset: str | None = None


def team_reward(ctx: RewardContext) -> TeamReward:
    return TeamReward(ctx.spec)


def team_mean_reward(ctx: RewardContext) -> TeamReward:
    return TeamReward(ctx.spec, divisor=ctx.spec.n_agents)


def random_split(ctx: RewardContext) -> RandomSplit:
    return RandomSplit(ctx.spec, ctx.seed)


def make_assigner(name: str, ctx: RewardContext) -> RewardAssigner:
    return ASSIGNERS[name].build(ctx)
