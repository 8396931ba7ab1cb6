"""The behaviour learner's replay buffer, and the team's view of it (the medium-replay dataset)."""
from __future__ import annotations

import numpy as np
import torch

from ..envs.base import EnvSpec

COLUMNS = ("obs", "next_obs", "actions", "rewards", "terminals", "timeouts", "episode_ids", "env_step")


class Replay:
    """Transitions over all agents, with the env step at which each was collected."""

    def __init__(self, capacity: int, n: int, O: int, A: int):
        self.obs = np.zeros((capacity, n, O), np.float32)
        self.next_obs = np.zeros_like(self.obs)
        self.actions = np.zeros((capacity, n, A), np.float32)
        self.rewards = np.zeros((capacity, n), np.float32)
        self.terminals = np.zeros(capacity, bool)
        self.timeouts = np.zeros(capacity, bool)
        self.episode_ids = np.zeros(capacity, np.int64)
        self.env_step = np.zeros(capacity, np.int64)
        self.size = 0

    def add(self, **cols):
        k = len(cols["obs"])
        sl = slice(self.size, self.size + k)
        for name, v in cols.items():
            getattr(self, name)[sl] = v
        self.size += k

    def columns(self) -> dict:
        return {name: getattr(self, name)[: self.size].copy() for name in COLUMNS}

    def sample(self, rng: np.random.Generator, batch: int) -> dict:
        idx = rng.integers(0, self.size, batch)
        t = lambda a: torch.as_tensor(a[idx])
        return {"obs": t(self.obs), "actions": t(self.actions), "rewards": t(self.rewards),
                "next_obs": t(self.next_obs), "terminals": t(self.terminals).float()}

    def team_episodes_upto(self, upto_step: int, spec: EnvSpec, team_idx: list[int]) -> dict[str, np.ndarray]:
        """Dataset arrays (data.py, raw, without team_rewards) of the team's transitions collected
        before `upto_step`, episodes contiguous."""
        sel = np.flatnonzero(self.env_step[: self.size] < upto_step)
        sel = sel[np.argsort(self.episode_ids[sel], kind="stable")]
        obs = self.obs[sel][:, team_idx, : spec.obs_dim]
        nobs = self.next_obs[sel][:, team_idx, : spec.obs_dim]
        eps = self.episode_ids[sel]
        starts = np.ones(len(sel), bool)
        starts[1:] = eps[1:] != eps[:-1]
        return {"obs": obs, "next_obs": nobs, "actions": self.actions[sel][:, team_idx],
                "individual_rewards": self.rewards[sel][:, team_idx],
                "state": spec.joint_state(obs), "next_state": spec.joint_state(nobs),
                "terminals": self.terminals[sel], "timeouts": self.timeouts[sel], "episode_starts": starts}
