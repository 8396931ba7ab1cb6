"""Multi-agent Particle Environments from the `mpe2` package (continuous actions).

Policies act in [-1, 1]; mpe2's continuous action space is [0, 1]^d, so actions are mapped with
(a + 1) / 2. Every MPE episode lasts exactly `max_cycles` steps (truncation, never termination).

The game drives mpe2's AEC environment (`raw_env`) through its public API, one `step` per agent in
turn, exactly as PettingZoo's parallel wrapper does, but observes each agent once per step: the
wrapper computes every observation twice, and observations dominate the cost of the larger tasks
(tests/test_envs.py checks rewards against the official parallel env).

Tasks of `omar_scenarios.TASKS` (OMAR's MPE tasks and the credit task, on mpe2's world) take
2-D forces in [-1, 1], mapped onto mpe2's 5-D action by `omar_scenarios.force_to_mpe2`.
"""
from __future__ import annotations

import importlib

import numpy as np

import mpe2.all_modules

from . import omar_scenarios
from .base import GameBase


def tasks() -> list[str]:
    return sorted([name.split("/", 1)[1] for name in mpe2.all_modules.mpe_environments] + list(omar_scenarios.TASKS))


def _make(task: str, task_args: dict):
    if task in omar_scenarios.TASKS:
        return omar_scenarios.OmarEnv(task, task_args)
    module = importlib.import_module(f"mpe2.{task}")
    return module.raw_env(continuous_actions=True, **task_args)


def agent_names(task: str, task_args: dict) -> list[str]:
    return list(_make(task, task_args).possible_agents)


class MPEGame(GameBase):
    def __init__(self, task: str, task_args: dict, num_envs: int):
        self.envs = [_make(task, task_args) for _ in range(num_envs)]
        e = self.envs[0]
        self.agents = list(e.possible_agents)
        self.obs_dims = [int(e.observation_space(a).shape[0]) for a in self.agents]
        self._env_action_dims = [int(e.action_space(a).shape[0]) for a in self.agents]
        self._forces = task in omar_scenarios.TASKS  # 2-D force actions
        self._causal_masks = omar_scenarios.CAUSAL_MASKS.get(task)
        self._task_args = task_args
        self.action_dims = [omar_scenarios.FORCE_DIMS] * len(self.agents) if self._forces else self._env_action_dims
        self.episode_limit = int(task_args.get("max_cycles", 25))
        self.num_envs = num_envs
        self._max_obs = max(self.obs_dims)

    def causal_masks(self):
        return None if self._causal_masks is None else self._causal_masks(self._task_args)

    def _observe(self, env) -> np.ndarray:
        out = np.zeros((len(self.agents), self._max_obs), np.float32)
        for i, a in enumerate(self.agents):
            out[i, : self.obs_dims[i]] = env.observe(a)
        return out

    def reset_one(self, k: int, seed: int) -> np.ndarray:
        self.envs[k].reset(seed=int(seed))
        return self._observe(self.envs[k])

    def reset(self, seeds) -> np.ndarray:
        return np.stack([self.reset_one(k, s) for k, s in enumerate(seeds)])

    def step(self, actions: np.ndarray):
        K, N = len(self.envs), len(self.agents)
        obs = np.zeros((K, N, self._max_obs), np.float32)
        rew = np.zeros((K, N), np.float32)
        term = np.zeros(K, bool)
        trunc = np.zeros(K, bool)
        env_actions = (omar_scenarios.force_to_mpe2(actions) if self._forces
                       else np.clip((actions + 1.0) * 0.5, 0.0, 1.0).astype(np.float32))
        for k, env in enumerate(self.envs):
            if any(env.terminations.values()) or any(env.truncations.values()):
                term[k] = True  # episode already over (the caller stopped collecting from it)
                continue
            for i, a in enumerate(self.agents):  # agents act in turn; the world steps after the last
                assert env.agent_selection == a
                env.step(env_actions[k, i, : self._env_action_dims[i]])
            obs[k] = self._observe(env)
            rew[k] = [env.rewards[a] for a in self.agents]
            term[k] = any(env.terminations.values())
            trunc[k] = any(env.truncations.values()) and not term[k]
        return obs, rew, term, trunc
