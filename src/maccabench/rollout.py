"""Running team policies in environments: evaluation (deterministic) and data collection (noisy).

Both use `run_episodes`, so the evaluation return of an offline learner and the S_random/S_expert
references stored in the datasets are measured the same way: the team's return, i.e. the sum
over steps and team agents of the individual rewards, with the other agents' frozen policy.

A policy (envs.base.Policy) is called as `policy(obs, avail)`: obs [K, N, O] and, for discrete
envs, the available-action masks bool [K, N, A] (None for continuous ones). It returns actions
[K, N, A] in [-1, 1] (continuous) or one integer per agent [K, N] among the available (discrete).
Exploration (`noise`): continuous, Gaussian noise of that std, clipped to [-1, 1]; discrete,
epsilon-greedy with epsilon = `noise`, the random action uniform over the available ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .envs.base import Policy, TeamEnv, team_reward
from .nets import AgentMLP


def actor_policy(actors: AgentMLP, action_mask: np.ndarray) -> Policy:
    """Deterministic continuous policy from stacked actors: obs [K, N, O] -> actions [K, N, A]."""
    mask = torch.as_tensor(action_mask)
    dev = next(actors.parameters()).device

    @torch.no_grad()
    def act(obs: np.ndarray, avail: np.ndarray | None = None) -> np.ndarray:
        x = torch.as_tensor(obs, dtype=torch.float32, device=dev).transpose(0, 1)
        x = torch.nn.functional.pad(x, (0, actors.d_in - x.shape[-1]))  # team obs may be narrower
        return (actors(x).cpu() * mask[:, None]).transpose(0, 1).numpy()
    return act


def logits_policy(actors: AgentMLP) -> Policy:
    """Greedy discrete policy from stacked actors whose outputs are action logits: obs [K, N, O],
    avail bool [K, N, A] -> the best available action per agent, int64 [K, N]."""
    dev = next(actors.parameters()).device

    @torch.no_grad()
    def act(obs: np.ndarray, avail: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(obs, dtype=torch.float32, device=dev).transpose(0, 1)
        logits = actors(torch.nn.functional.pad(x, (0, actors.d_in - x.shape[-1]))).cpu().transpose(0, 1).numpy()
        return masked_argmax(logits[..., : avail.shape[-1]], avail)
    return act


def masked_argmax(scores: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """The best available action per agent: scores [..., A], avail bool [..., A] -> int64 [...]."""
    return np.where(avail, scores, -np.inf).argmax(axis=-1)


def random_available(rng: np.random.Generator, avail: np.ndarray) -> np.ndarray:
    """One action per agent, uniform over its available ones: avail bool [..., A] -> int64 [...]."""
    return masked_argmax(rng.random(avail.shape), avail)


def episode_seed(seed: int, episode: int) -> int:
    """Distinct, reproducible env seed of episode `episode` of a run seeded `seed`."""
    return (seed * 1_000_003 + episode) % (2**31 - 1)


@dataclass
class Episodes:
    returns: list[float] = field(default_factory=list)
    won: list[bool] = field(default_factory=list)            # per episode, where the env reports it (SMAX)
    arrays: dict[str, list] = field(default_factory=dict)   # filled when recording

    def add(self, name, value):
        self.arrays.setdefault(name, []).append(value)

    @property
    def win_rate(self) -> float | None:
        """The fraction of episodes won; None where the env reports no `won` flag."""
        return float(np.mean(self.won)) if self.won else None


def run_episodes(env: TeamEnv, policy: Policy, episodes: int, seed: int, noise: float = 0.0,
                 record: bool = False, rng: np.random.Generator | None = None) -> Episodes:
    """Play `episodes` whole episodes; episodes are recorded contiguously when `record`, with
    `avail_actions` / `next_avail_actions` for discrete envs."""
    K, spec = env.num_envs, env.spec
    amask = spec.action_mask()
    rng = rng or np.random.default_rng(seed)
    out = Episodes()
    next_episode = min(K, episodes)
    active = np.arange(K) < episodes
    obs, state = env.reset([episode_seed(seed, k) for k in range(K)])
    steps: list[list[dict]] = [[] for _ in range(K)]
    while active.any():
        avail = env.avail_actions()
        act = policy(obs, avail)
        if spec.discrete:
            act = np.asarray(act, np.int64)
            if noise > 0:
                explore = rng.random(act.shape) < noise
                act = np.where(explore, random_available(rng, avail), act)
        else:
            if noise > 0:
                act = np.clip(act + noise * rng.standard_normal(act.shape).astype(np.float32), -1, 1)
            act = (act * amask).astype(np.float32)
        nobs, nstate, rew, term, trunc = env.step(act)
        info = env.episode_info()
        now = dict(obs=obs, actions=act, individual_rewards=rew, next_obs=nobs, state=state, next_state=nstate,
                   terminals=term, timeouts=trunc)
        if spec.discrete:
            now.update(avail_actions=avail, next_avail_actions=env.avail_actions())
        for k in np.flatnonzero(active):
            steps[k].append({name: a[k] for name, a in now.items()})
        # copies: the resets below write into obs/state, and the recorded steps hold views of nobs/nstate
        obs, state = nobs.copy(), nstate.copy()
        for k in np.flatnonzero(active & (term | trunc)):
            ep = steps[k]
            out.returns.append(float(sum(team_reward(s["individual_rewards"]) for s in ep)))
            if "won" in info:
                out.won.append(bool(info["won"][k]))
            if record:
                for t, s in enumerate(ep):
                    for name, v in s.items():
                        out.add(name, v)
                    out.add("episode_starts", t == 0)
            steps[k] = []
            if next_episode < episodes:
                o, s = env.reset_one(k, episode_seed(seed, next_episode))
                obs[k], state[k] = o, s
                next_episode += 1
            else:
                active[k] = False
    return out


def stack_episodes(ep: Episodes) -> dict[str, np.ndarray]:
    """Recorded steps as dataset arrays (see data.py), with team_rewards = sum of individual;
    actions keep their dtype (float32 continuous, int64 discrete)."""
    arrays = {k: np.stack(v) for k, v in ep.arrays.items()}
    for k in ("obs", "next_obs", "state", "next_state", "individual_rewards"):
        arrays[k] = arrays[k].astype(np.float32)
    arrays["team_rewards"] = team_reward(arrays["individual_rewards"])
    return arrays


def evaluate(env: TeamEnv, policy: Policy, episodes: int, seed: int) -> np.ndarray:
    """Team returns of `episodes` deterministic episodes (run_episodes, for win rates too)."""
    return np.asarray(run_episodes(env, policy, episodes, seed).returns)
