"""Reward assigners: which reward each agent's TD target uses.

Offline datasets hold only the team reward R_t. Before every backbone update the training loop
asks a *reward assigner* for per-agent rewards [B, N] and puts them in `batch["rewards"]`:

    assigner.update(batch)                       # the assigner trains itself (no-op for TeamReward)
    batch["rewards"] = assigner.assign(batch)
    backbone.update(batch)

`TeamReward` hands every agent the team reward (I-CQL, OMAR, MA-ICQ). MACCA's causal model
(`maccabench.causal`) is another assigner, so `macca-omar` is the OMAR backbone with the causal
assigner: a config entry under `algorithms:`, not a copy of the backbone.

Optional hooks the loop calls when an assigner has them:
  pretrain(sample_batch)   once before the first update of a fresh run (sample_batch() -> batch)
  mask_snapshot(probe)     at every evaluation -> (s_to_r [N, S], a_to_r [N, N*A]) for masks.npz
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch

from .envs.base import EnvSpec


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
    """What an assigner may be built from. `raw_dataset` is set only for assigners that read the
    hidden individual rewards (ground-truth ablations); every other one sees team data only."""
    spec: EnvSpec
    hp: dict
    device: torch.device
    seed: int
    dataset: object                 # the team data.Dataset being trained on
    raw_dataset: str | None = None


@dataclass(frozen=True)
class AssignerEntry:
    build: Callable[[RewardContext], RewardAssigner]
    shared: bool                    # every agent gets the same reward (the team reward)
    config_section: str | None      # top-level config section holding its hyper-parameters
    reads_raw: bool = False         # needs the raw dataset (individual rewards): ground truth only
    doc: str = ""
    config_class: Callable[[], type] | None = None   # dataclass of its hyper-parameters, checked before jobs start


def _causal_config():
    from .causal import CausalConfig
    return CausalConfig


def _causal(ctx: RewardContext):
    from .causal import CausalRewardModel
    return CausalRewardModel(ctx.spec, ctx.hp, ctx.device, ctx.seed)


def _ground_truth(ctx: RewardContext):
    from .causal import GroundTruthReward, read_ground_truth
    return GroundTruthReward(read_ground_truth(ctx.raw_dataset, ctx.dataset), ctx.device)


def _causal_gt(ctx: RewardContext):
    from .causal import CausalRewardModel
    return CausalRewardModel(ctx.spec, ctx.hp, ctx.device, ctx.seed, truth=_ground_truth(ctx))


# name (as written in `algorithms.<name>.rewards`) -> how to build it
ASSIGNERS: dict[str, AssignerEntry] = {
    "team": AssignerEntry(lambda ctx: TeamReward(ctx.spec), shared=True, config_section=None,
                          doc="every agent receives the team reward"),
    "causal": AssignerEntry(_causal, shared=False, config_section="causal", config_class=_causal_config,
                            doc="MACCA's causal reward model (team reward -> per-agent rewards)"),
    "ground_truth": AssignerEntry(_ground_truth, shared=False, config_section=None, reads_raw=True,
                                  doc="the hidden individual rewards from the raw dataset (Table 9)"),
    "causal_gt": AssignerEntry(_causal_gt, shared=False, config_section="causal", reads_raw=True,
                               config_class=_causal_config,
                               doc="MACCA's model fitted to the individual rewards (Table 9)"),
}


def make_assigner(name: str, ctx: RewardContext) -> RewardAssigner:
    return ASSIGNERS[name].build(ctx)
