"""The behaviour learner's replay of every transition it collected, and the team's view of it (the
medium-replay dataset). MATD3 also samples its updates from it."""
from __future__ import annotations

import numpy as np
import torch

from ..envs.base import EnvSpec


class Replay:
    """Transitions over all agents, with the env step at which each was collected. Discrete games
    add integer actions and the available-action masks; games with a joint state of their own
    (game.state_dim) add it, so the medium-replay dataset holds the game's state."""

    def __init__(self, capacity: int, n: int, O: int, A: int, discrete: bool = False, state_dim: int | None = None):
        self.obs = np.zeros((capacity, n, O), np.float32)
        self.next_obs = np.zeros_like(self.obs)
        self.actions = np.zeros((capacity, n), np.int64) if discrete else np.zeros((capacity, n, A), np.float32)
        self.rewards = np.zeros((capacity, n), np.float32)
        self.terminals = np.zeros(capacity, bool)
        self.timeouts = np.zeros(capacity, bool)
        self.episode_ids = np.zeros(capacity, np.int64)
        self.env_step = np.zeros(capacity, np.int64)
        self.column_names = ["obs", "next_obs", "actions", "rewards", "terminals", "timeouts", "episode_ids", "env_step"]
        if discrete:
            self.avail_actions = np.zeros((capacity, n, A), bool)
            self.next_avail_actions = np.zeros_like(self.avail_actions)
            self.column_names += ["avail_actions", "next_avail_actions"]
        if state_dim is not None:
            self.state = np.zeros((capacity, state_dim), np.float32)
            self.next_state = np.zeros_like(self.state)
            self.column_names += ["state", "next_state"]
        self.size = 0

    def add(self, **cols):
        k = len(cols["obs"])
        sl = slice(self.size, self.size + k)
        for name in self.column_names:
            getattr(self, name)[sl] = cols[name]
        self.size += k

    def columns(self) -> dict:
        return {name: getattr(self, name)[: self.size].copy() for name in self.column_names}

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
        out = {"obs": obs, "next_obs": nobs, "actions": self.actions[sel][:, team_idx],
               "individual_rewards": self.rewards[sel][:, team_idx],
               "terminals": self.terminals[sel], "timeouts": self.timeouts[sel], "episode_starts": starts}
        if "state" in self.column_names:
            out.update(state=self.state[sel], next_state=self.next_state[sel])
        else:
            out.update(state=spec.joint_state(obs), next_state=spec.joint_state(nobs))
        if "avail_actions" in self.column_names:
            out.update(avail_actions=self.avail_actions[sel][:, team_idx, : spec.action_dim],
                       next_avail_actions=self.next_avail_actions[sel][:, team_idx, : spec.action_dim])
        return out
