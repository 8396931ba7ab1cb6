"""`policies.pt`: the behaviour stage's team actors (random, medium, expert checkpoints) and the
frozen opponents, with the agent layout they act in. Written by the behaviour stage, read by
collection (behaviour policies) and offline training (the frozen opponents of evaluation).

The file holds state dicts of one stacked actor over *all* agents of the game; the team acts
through its rows, the opponents through the others' rows of the expert checkpoint. Continuous
games: tanh actions in [-1, 1]; discrete games: action logits, acted on greedily over the
available actions (a learner whose agents share parameters stores one copy per agent).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .envs.base import Game, Policy, action_mask, split_agents
from .errors import MaccabenchError
from .io import atomic_path
from .nets import AgentMLP
from .rollout import actor_policy, logits_policy


class BehaviorFileError(MaccabenchError):
    """A file of a behaviour folder that is missing or unreadable; the fix regenerates the folder."""

    def __init__(self, path, problem: str, fix: str = "delete the behaviour folder and rerun the pipeline "
                                                       "(snakemake behavior_policies) to regenerate it"):
        self.path = str(path)
        super().__init__(f"{path}: {problem}. Fix: {fix}")


@dataclass(frozen=True)
class AgentLayout:
    """Every agent of a game, in the game's order, and which of them form the team."""
    agents: list[str]
    obs_dims: list[int]
    action_dims: list[int]
    team: list[str]
    discrete: bool = False          # integer actions: the actor outputs logits

    @classmethod
    def of(cls, game: Game, team: list[str]) -> "AgentLayout":
        return cls(list(game.agents), list(game.obs_dims), list(game.action_dims), list(team), bool(game.discrete))

    @property
    def team_idx(self) -> list[int]:
        return split_agents(self.agents, self.team)[0]

    @property
    def other_idx(self) -> list[int]:
        return split_agents(self.agents, self.team)[1]

    @property
    def action_mask(self) -> np.ndarray:     # [N_all, maxA]
        return action_mask(self.action_dims)

    def actor(self, hidden: int) -> AgentMLP:
        """A freshly initialised stacked actor over all agents (consumes torch's RNG)."""
        return AgentMLP(len(self.agents), max(self.obs_dims), hidden, max(self.action_dims),
                        out_act=None if self.discrete else "tanh")

    def policy(self, actor: AgentMLP, idx: list[int]) -> Policy:
        """The deterministic policy of agents `idx` (rows of the stacked `actor`)."""
        sub = actor.subset(idx)
        return logits_policy(sub) if self.discrete else actor_policy(sub, self.action_mask[idx])

    def team_policy(self, actor: AgentMLP) -> Policy:
        return self.policy(actor, self.team_idx)

    def others_policy(self, actor: AgentMLP) -> Policy | None:
        """The non-team agents' policy, or None where the team is every agent."""
        return self.policy(actor, self.other_idx) if self.other_idx else None


def save_policies(path: str | Path, layout: AgentLayout, hidden: int, entry: dict, actors: dict[str, dict]) -> None:
    """Write `policies.pt` atomically; `actors` maps quality -> state dict of the stacked actor."""
    ckpt = {"agents": layout.agents, "obs_dims": layout.obs_dims, "action_dims": layout.action_dims,
            "discrete": layout.discrete, "hidden": hidden, "team": layout.team, "env": entry, "actors": actors}
    with atomic_path(Path(path)) as tmp:
        torch.save(ckpt, tmp)


def load_policies(path: str | Path, quality: str) -> tuple[Policy, Policy | None]:
    """(team policy of `quality`, the frozen opponents' policy or None where there are none)."""
    if not Path(path).exists():
        raise BehaviorFileError(path, "does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        layout = AgentLayout(ckpt["agents"], ckpt["obs_dims"], ckpt["action_dims"], ckpt["team"],
                             ckpt.get("discrete", False))   # files from before discrete games: continuous
        actors, hidden = ckpt["actors"], ckpt["hidden"]
    except Exception as e:   # torch.load raises whatever its unpickler meets in a damaged file
        raise BehaviorFileError(path, f"cannot be read as a policies file (truncated or corrupted: "
                                      f"{type(e).__name__}: {e})") from None
    if quality not in actors or "expert" not in actors:
        raise BehaviorFileError(path, f"holds no {quality!r} actor (it has {', '.join(sorted(actors))})")

    def actor(q: str) -> AgentMLP:
        m = layout.actor(hidden)
        m.load_state_dict(actors[q])
        return m
    # built in this order, the opponents' actor only where there are opponents: each build
    # consumes torch's RNG, and the offline loop loads the opponents after seeding it
    team_policy = layout.team_policy(actor(quality))
    others = layout.others_policy(actor("expert")) if layout.other_idx else None
    return team_policy, others
