"""Environment suites (adapter code) and the team's view of a config entry. Suites are registered
in `maccabench.registry.SUITES` by module path, so importing this package imports no suite, and
its interface (`base`, numpy) loads on first use: config validation reads the suites' descriptions
(e.g. `envs.mpe_tasks`) from inside this package without paying for either. Tasks themselves are
config entries."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..registry import SUITES

if TYPE_CHECKING:
    import numpy as np

    from .base import EnvSpec, Game, Policy, TeamEnv

_FROM_BASE = ("EnvSpec", "Game", "Policy", "TeamEnv", "require_same_spec")


def __getattr__(name: str):
    if name in _FROM_BASE:
        return getattr(importlib.import_module(f"{__name__}.base"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_game(entry: dict, num_envs: int) -> Game:
    """A game over all agents of a config entry (see config.env_entry)."""
    return SUITES[entry["suite"]].make_game(entry["task"], entry.get("task_args", {}), num_envs)


def spec_of(entry: dict, game: Game | None = None) -> EnvSpec:
    from .base import EnvSpec, split_agents
    game = game or make_game(entry, 1)
    idx, _ = split_agents(game.agents, entry["team"])
    obs_dims = tuple(game.obs_dims[i] for i in idx)
    state_dim = sum(obs_dims) if game.state_dim is None else game.state_dim   # EnvSpec.joint_state's, or the game's own
    return EnvSpec(env=entry["name"], suite=entry["suite"], task=entry["task"], agents=tuple(entry["team"]),
                   obs_dims=obs_dims, action_dims=tuple(game.action_dims[i] for i in idx),
                   state_dim=state_dim, discrete=bool(game.discrete), episode_limit=game.episode_limit)


def causal_masks_of(entry: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """The true causal masks of a config entry's team, in masks.npz's layout, or None where its
    task declares none (base.team_causal_masks)."""
    from .base import team_causal_masks
    game = make_game(entry, 1)
    return team_causal_masks(game, entry["team"], spec_of(entry, game))


def make_team_env(entry: dict, num_envs: int, others_policy: Policy | None) -> TeamEnv:
    from .base import TeamEnv
    game = make_game(entry, num_envs)
    return TeamEnv(spec_of(entry, game), game, entry["team"], others_policy)


__all__ = ["SUITES", "EnvSpec", "TeamEnv", "causal_masks_of", "make_game", "make_team_env", "spec_of",
           "require_same_spec"]
