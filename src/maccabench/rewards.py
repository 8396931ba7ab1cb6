"""Reward assigners: which reward each agent's TD target uses.

Offline datasets hold only the team reward R_t. Before every backbone update the training loop
asks a *reward assigner* for per-agent rewards [B, N] and puts them in `batch["rewards"]`:

    assigner.update(batch)                       # the assigner trains itself (no-op for TeamReward)
    batch["rewards"] = assigner.assign(batch)
    backbone.update(batch)

`TeamReward` hands every agent the team reward (I-CQL, OMAR, MA-ICQ). MACCA's causal model
(`maccabench.causal`) is another assigner, so `macca-omar` is the OMAR backbone with the causal
assigner: a config entry under `algorithms:`, not a copy of the backbone.

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


class TeamReward:
    """Every agent receives the team reward."""

    def __init__(self, spec: EnvSpec):
        self.n = spec.n_agents

    def update(self, batch) -> dict[str, float]:
        return {}

    def assign(self, batch) -> torch.Tensor:
        return batch["team_rewards"].unsqueeze(1).expand(-1, self.n)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, d: dict) -> None:
        pass


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


def make_assigner(name: str, ctx: RewardContext) -> RewardAssigner:
    return ASSIGNERS[name].build(ctx)
