"""The real StarCraft Multi-Agent Challenge (oxwhirl's SMAC on StarCraft II) as a discrete game.

Runs only where StarCraft II, SMAC's maps and oxwhirl's `smac` package are installed
(`smac_maps.installation_problem`, checked before any job). No machine this project's sessions
ran on had them, so this adapter has never been run: it follows SMAC's documented API
(`StarCraft2Env.reset/step/get_obs/get_state/get_avail_actions/get_env_info`) and nothing else.

What differs from the SMAX suite, by SMAC's design:
- SMAC returns one team reward per step; it has no per-unit damage record to split it exactly, so
  each ally's "individual" reward is the team reward / N. Training never reads individual rewards;
  the reward-recovery diagnostics would compare MACCA against this equal split and mean nothing
  on SMAC (the recovery table lists no SMAC env).
- Episodes cannot be seeded one by one: StarCraft II takes a seed when its game is created. Copy k
  of the game is created with seed `base + k` (the first reset's seed), later seeds are ignored.
- A StarCraft II restart inside `step` (SMAC answers `0, True, {}`) ends the episode as a
  truncation, not as a terminal state.
"""
from __future__ import annotations

import numpy as np

from ..errors import MaccabenchError
from . import smac_maps
from .base import WinLossGameBase


class SmacGame(WinLossGameBase):
    label = "SMAC"

    def __init__(self, task: str, task_args: dict, num_envs: int):
        if task not in smac_maps.ALLIES:
            raise MaccabenchError(f"SMAC map {task!r} is not one of this suite's. Fix: use one of "
                                  f"{', '.join(smac_maps.ALLIES)} (add others to envs/smac_maps.py)")
        if task_args:
            raise MaccabenchError(f"SMAC map {task} takes no task_args, got {sorted(task_args)}")
        lacking = smac_maps.installation_problem(task)
        if lacking:
            raise MaccabenchError(f"SMAC map {task} cannot run here: {lacking[0]}. Fix: {lacking[1]}")
        self.task, self.num_envs = task, num_envs
        self._envs: list | None = None
        info = self._make(0).get_env_info()   # the map's sizes; StarCraft II starts on a game's first reset
        n = int(info["n_agents"])
        if n != smac_maps.ALLIES[task]:
            raise MaccabenchError(f"SMAC map {task} has {n} agents, envs/smac_maps.py says {smac_maps.ALLIES[task]}. "
                                  "Fix: correct ALLIES there")
        self.agents = smac_maps.agents(task)
        self.obs_dims = [int(info["obs_shape"])] * n
        self.action_dims = [int(info["n_actions"])] * n
        self.state_dim = int(info["state_shape"])
        self.episode_limit = int(info["episode_limit"])
        K, A = num_envs, self.action_dims[0]
        self._obs = np.zeros((K, n, self.obs_dims[0]), np.float32)
        self._state = np.zeros((K, self.state_dim), np.float32)
        self._avail = np.zeros((K, n, A), bool)
        self._over = np.ones(K, bool)
        self._won = np.zeros(K, bool)

    def _make(self, seed: int):
        from smac.env import StarCraft2Env   # oxwhirl's SMAC, imported only where it is installed
        return StarCraft2Env(map_name=self.task, seed=int(seed))

    def _observe(self, k: int) -> None:
        env = self._envs[k]
        self._obs[k] = np.asarray(env.get_obs(), np.float32)
        self._state[k] = np.asarray(env.get_state(), np.float32)
        self._avail[k] = np.asarray(env.get_avail_actions()).astype(bool)

    def reset_one(self, k: int, seed: int) -> np.ndarray:
        if self._envs is None:   # StarCraft II games are created once, on the first reset's seeds
            self._envs = [self._make(int(seed) + j) for j in range(self.num_envs)]
        self._envs[k].reset()
        self._observe(k)
        self._over[k], self._won[k] = False, False
        return self._obs[k].copy()

    def reset(self, seeds) -> np.ndarray:
        assert len(seeds) == self.num_envs
        if self._envs is None:
            self._envs = [self._make(int(s)) for s in seeds]
        return np.stack([self.reset_one(k, s) for k, s in enumerate(seeds)])

    def step(self, actions: np.ndarray):
        actions = self._check_actions(actions, live=~self._over)
        K, N = self.num_envs, len(self.agents)
        rewards = np.zeros((K, N), np.float32)
        term, trunc = np.zeros(K, bool), np.zeros(K, bool)
        for k, env in enumerate(self._envs):
            if self._over[k]:
                term[k] = True   # episode already over (the caller stopped collecting from it)
                continue
            reward, terminated, info = env.step(actions[k].tolist())
            rewards[k] = float(reward) / N   # SMAC's one team reward, split equally (module docstring)
            restarted = terminated and not info   # StarCraft II restarted: no outcome to record
            trunc[k] = bool(terminated and (info.get("episode_limit", False) or restarted))
            term[k] = bool(terminated) and not trunc[k]
            self._won[k] = bool(info.get("battle_won", False))
            self._over[k] = bool(terminated)
            self._observe(k)
        return self._obs.copy(), rewards, term, trunc


    def close(self) -> None:
        for env in self._envs or []:
            env.close()
        self._envs = None

    def __del__(self):   # StarCraft II runs as a separate process per game
        try:
            self.close()
        except Exception:
            pass
