"""The interface every suite adapter implements, and the team's view of an environment.

A suite exposes a *game*: K copies of a task stepped side by side, over **all** its agents, with
actions in [-1, 1] (continuous) padded to the widest agent, or one integer per agent (discrete,
with per-agent available-action masks). `TeamEnv` turns a game into what the offline learners see:
the team's observations, the joint state (the game's own where it has one, else concatenated team
observations), per-agent individual rewards, available actions, per-episode information, and the
other agents driven by a frozen policy. The `EnvSpec` of that view is written into every dataset
and checked wherever a dataset meets an environment.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Callable, Protocol

import numpy as np

from ..errors import MaccabenchError


def action_mask(action_dims) -> np.ndarray:
    """[N, max(action_dims)] with 1 where an agent's padded action dimension is real."""
    m = np.zeros((len(action_dims), max(action_dims)), np.float32)
    for i, d in enumerate(action_dims):
        m[i, :d] = 1
    return m


def split_agents(agents, team) -> tuple[list[int], list[int]]:
    """(indices of the team's agents in the team's order, indices of every other agent)."""
    team_idx = [list(agents).index(a) for a in team]
    return team_idx, [i for i in range(len(agents)) if i not in team_idx]


def team_reward(individual_rewards: np.ndarray) -> np.ndarray:
    """The team reward: the sum of the team agents' individual rewards, [..., N] -> [...] float32."""
    return individual_rewards.sum(axis=-1).astype(np.float32)


@dataclass(frozen=True)
class EnvSpec:
    env: str
    suite: str
    task: str
    agents: tuple[str, ...]
    obs_dims: tuple[int, ...]      # true per-agent sizes; arrays are padded to the max
    action_dims: tuple[int, ...]
    state_dim: int
    discrete: bool
    episode_limit: int

    @property
    def n_agents(self) -> int:
        return len(self.agents)

    @property
    def obs_dim(self) -> int:
        return max(self.obs_dims)

    @property
    def action_dim(self) -> int:
        return max(self.action_dims)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "EnvSpec":
        d = json.loads(text)
        for f in fields(cls):
            if isinstance(d.get(f.name), list):
                d[f.name] = tuple(d[f.name])
        return cls(**d)

    def differences(self, other: "EnvSpec") -> list[str]:
        return [f"{f.name}: {getattr(self, f.name)!r} vs {getattr(other, f.name)!r}"
                for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]

    def action_mask(self) -> np.ndarray:
        """[N, A] with 1 where an agent's padded action dimension is real."""
        return action_mask(self.action_dims)

    def joint_state(self, obs: np.ndarray) -> np.ndarray:
        """The joint state where a suite has none: the team's observations at their true sizes,
        concatenated. obs [..., N, >= O] -> [..., state_dim]."""
        return np.concatenate([obs[..., i, :d] for i, d in enumerate(self.obs_dims)], axis=-1)


class SpecMismatch(MaccabenchError):
    pass


def require_same_spec(expected: EnvSpec, found: EnvSpec, what: str) -> None:
    diff = expected.differences(found)
    if diff:
        raise SpecMismatch(f"{what} does not match environment {expected.env!r} "
                           f"({'; '.join(diff)}). Fix: use a dataset made for this env and config, "
                           f"or regenerate it")


class Game(Protocol):
    """K copies of one task over all its agents. Suites implement this (subclassing `GameBase`
    for the parts a suite may lack)."""
    agents: list[str]
    obs_dims: list[int]
    action_dims: list[int]             # discrete: the number of actions of each agent
    episode_limit: int
    num_envs: int
    discrete: bool
    state_dim: int | None              # the size of the game's own joint state; None: it has none

    def reset(self, seeds: list[int]) -> np.ndarray:          # -> obs [K, N_all, maxO]
        ...

    def reset_one(self, k: int, seed: int) -> np.ndarray:      # -> obs [N_all, maxO]
        ...

    def step(self, actions: np.ndarray):
        """actions [K, N_all, maxA] in [-1, 1] (continuous) or [K, N_all] integers (discrete)
        -> obs [K,N_all,maxO], rewards [K,N_all], terminated [K], truncated [K]."""
        ...

    def state(self) -> np.ndarray | None:
        """The joint state of every env now (after the last step or reset) [K, state_dim], or None."""
        ...

    def avail_actions(self) -> np.ndarray | None:
        """Discrete games: the actions each agent may take now, bool [K, N_all, maxA]; else None."""
        ...

    def episode_info(self) -> dict[str, np.ndarray]:
        """Per-env facts of the last step, each [K], meaningful where that step ended the episode
        (e.g. SMAX's `won`); {} where the suite has none."""
        ...

    def causal_masks(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The task's true causal structure where it is known, else None: booleans (state
        [N_all, sum obs_dims], action [N_all, N_all * max(action_dims)]), row i the causes of agent
        i's reward among all agents' observations (true sizes, concatenated) and padded actions."""
        ...


class GameBase:
    """Defaults for what a suite's game may lack: continuous actions, no joint state of its own,
    no action masks, no per-episode information, no known causal structure."""
    discrete = False
    state_dim: int | None = None

    def state(self) -> np.ndarray | None:
        return None

    def avail_actions(self) -> np.ndarray | None:
        return None

    def episode_info(self) -> dict[str, np.ndarray]:
        return {}

    def causal_masks(self) -> tuple[np.ndarray, np.ndarray] | None:
        return None


class WinLossGameBase(GameBase):
    """Discrete win/loss games (SMAX, SMAC) that keep the last step's joint state `_state`
    [K, S], availability masks `_avail` [K, N, A] and won flags `_won` [K] as arrays."""
    discrete = True
    label = ""   # the suite's name in messages

    def _check_actions(self, actions: np.ndarray, live: np.ndarray) -> np.ndarray:
        """`actions` as integers [K, N], each available to its agent now in every live env (bool
        [K]); else a MaccabenchError naming the env, agent and action."""
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs, len(self.agents)) or not np.issubdtype(actions.dtype, np.integer):
            raise MaccabenchError(f"{self.label} {self.task}: actions must be integers of shape "
                                  f"{(self.num_envs, len(self.agents))}, got {actions.dtype} {actions.shape}")
        ok = np.take_along_axis(self._avail, np.clip(actions, 0, self._avail.shape[-1] - 1)[..., None], -1)[..., 0]
        ok &= (actions >= 0) & (actions < self._avail.shape[-1])
        bad = np.argwhere(~ok & live[:, None])
        if len(bad):
            k, i = bad[0]
            raise MaccabenchError(f"{self.label} {self.task}: env {k}, {self.agents[i]} took action {actions[k, i]}, "
                                  f"not available now (available: {np.flatnonzero(self._avail[k, i]).tolist()}). "
                                  "Fix: choose among avail_actions()")
        return actions

    def state(self) -> np.ndarray:
        return self._state.copy()

    def avail_actions(self) -> np.ndarray:
        return self._avail.copy()

    def episode_info(self) -> dict[str, np.ndarray]:
        return {"won": self._won.copy()}


def team_causal_masks(game: Game, team: list[str], spec: EnvSpec) -> tuple[np.ndarray, np.ndarray] | None:
    """The game's true causal masks (Game.causal_masks) of the team's rewards over the team's joint
    state and padded joint action, the layout of a MACCA run's masks.npz: s->r [N, S], a->r
    [N, N * A]. None where the game declares none, or where a team agent's reward has a cause
    outside the team's view (another agent's observation or action), which no team mask can hold."""
    declared = game.causal_masks()
    if declared is None:
        return None
    state, action = (np.asarray(m, bool) for m in declared)
    team_idx, _ = split_agents(game.agents, team)
    starts = np.cumsum([0, *game.obs_dims])
    state_cols = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in team_idx])
    width = max(game.action_dims)
    action_cols = np.concatenate([i * width + np.arange(spec.action_dim) for i in team_idx])
    state, action = state[team_idx], action[team_idx]
    if state[:, state_cols].sum() != state.sum() or action[:, action_cols].sum() != action.sum():
        return None
    return state[:, state_cols], action[:, action_cols]


# policy(obs [K, M, maxO], avail bool [K, M, maxA] or None where the game is continuous) -> actions
# [K, M, maxA] in [-1, 1], or (discrete) one available integer action per agent [K, M]
Policy = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]


class TeamEnv:
    """The team's view of a game; the other agents act through `others_policy` (deterministic)."""

    def __init__(self, spec: EnvSpec, game: Game, team: list[str], others_policy: Policy | None):
        self.spec, self.game = spec, game
        self.team_idx, self.other_idx = split_agents(game.agents, team)
        if self.other_idx and others_policy is None:
            raise ValueError(f"{spec.env}: agents {[game.agents[i] for i in self.other_idx]} need a policy")
        self.others_policy = others_policy
        self.num_envs = game.num_envs
        self._obs_all = None

    def _team_view(self, obs_all: np.ndarray, k: int | None = None):
        obs = obs_all[..., self.team_idx, : self.spec.obs_dim]
        if self.game.state_dim is None:
            return obs, self.spec.joint_state(obs)
        state = self.game.state()
        return obs, state if k is None else state[k]

    def reset(self, seeds: list[int]):
        self._obs_all = self.game.reset(seeds)
        return self._team_view(self._obs_all)

    def reset_one(self, k: int, seed: int):
        self._obs_all[k] = self.game.reset_one(k, seed)
        return self._team_view(self._obs_all[k], k)

    def avail_actions(self) -> np.ndarray | None:
        """The team's available actions now, bool [K, N, A] (discrete games), else None."""
        avail = self.game.avail_actions()
        return None if avail is None else avail[:, self.team_idx, : self.spec.action_dim]

    def episode_info(self) -> dict[str, np.ndarray]:
        return self.game.episode_info()

    def step(self, team_actions: np.ndarray):
        """team_actions [K, N, A] (discrete: [K, N] integers) -> obs, state, individual rewards
        [K, N], terminated, truncated."""
        K = team_actions.shape[0]
        if self.spec.discrete:
            full = np.zeros((K, len(self.game.agents)), np.int32)
            full[:, self.team_idx] = team_actions
        else:
            full = np.zeros((K, len(self.game.agents), max(self.game.action_dims)), np.float32)
            full[:, self.team_idx, : team_actions.shape[-1]] = team_actions
        if self.other_idx:
            avail = self.game.avail_actions()
            others = self.others_policy(self._obs_all[:, self.other_idx],
                                        None if avail is None else avail[:, self.other_idx])
            if self.spec.discrete:
                full[:, self.other_idx] = others
            else:
                full[:, self.other_idx, : others.shape[-1]] = others
        self._obs_all, rewards, terminated, truncated = self.game.step(full)
        obs, state = self._team_view(self._obs_all)
        return obs, state, rewards[:, self.team_idx], terminated, truncated
