"""Running team policies in environments: evaluation (deterministic) and data collection (noisy).

Both use `run_episodes`, so the evaluation return of an offline learner and the S_random/S_expert
references stored in the datasets are measured the same way: the team's return, i.e. the sum
over steps and team agents of the individual rewards, with the other agents' frozen policy.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .envs.base import Policy, TeamEnv, team_reward
from .nets import AgentMLP


def actor_policy(actors: AgentMLP, action_mask: np.ndarray) -> Policy:
    """Deterministic numpy policy from stacked actors: obs [K, N, O] -> actions [K, N, A]."""
    mask = torch.as_tensor(action_mask)
    dev = next(actors.parameters()).device

    @torch.no_grad()
    def act(obs: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(obs, dtype=torch.float32, device=dev).transpose(0, 1)
        x = torch.nn.functional.pad(x, (0, actors.d_in - x.shape[-1]))  # team obs may be narrower
        return (actors(x).cpu() * mask[:, None]).transpose(0, 1).numpy()
    return act


def episode_seed(seed: int, episode: int) -> int:
    """Distinct, reproducible env seed of episode `episode` of a run seeded `seed`."""
    return (seed * 1_000_003 + episode) % (2**31 - 1)


@dataclass
class Episodes:
    returns: list[float] = field(default_factory=list)
    arrays: dict[str, list] = field(default_factory=dict)   # filled when recording

    def add(self, name, value):
        self.arrays.setdefault(name, []).append(value)


def run_episodes(env: TeamEnv, policy: Policy, episodes: int, seed: int, noise: float = 0.0,
                 record: bool = False, rng: np.random.Generator | None = None) -> Episodes:
    """Play `episodes` whole episodes; episodes are recorded contiguously when `record`."""
    K, spec = env.num_envs, env.spec
    amask = spec.action_mask()
    rng = rng or np.random.default_rng(seed)
    out = Episodes()
    next_episode = min(K, episodes)
    active = np.arange(K) < episodes
    obs, state = env.reset([episode_seed(seed, k) for k in range(K)])
    steps: list[list[dict]] = [[] for _ in range(K)]
    while active.any():
        act = policy(obs)
        if noise > 0:
            act = np.clip(act + noise * rng.standard_normal(act.shape).astype(np.float32), -1, 1)
        act = (act * amask).astype(np.float32)
        nobs, nstate, rew, term, trunc = env.step(act)
        for k in np.flatnonzero(active):
            steps[k].append(dict(obs=obs[k], actions=act[k], individual_rewards=rew[k], next_obs=nobs[k],
                                 state=state[k], next_state=nstate[k], terminals=term[k], timeouts=trunc[k]))
        obs, state = nobs, nstate
        for k in np.flatnonzero(active & (term | trunc)):
            ep = steps[k]
            out.returns.append(float(sum(team_reward(s["individual_rewards"]) for s in ep)))
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
    """Recorded steps as dataset arrays (see data.py), with team_rewards = sum of individual."""
    arrays = {k: np.stack(v) for k, v in ep.arrays.items()}
    for k in ("obs", "next_obs", "actions", "state", "next_state", "individual_rewards"):
        arrays[k] = arrays[k].astype(np.float32)
    arrays["team_rewards"] = team_reward(arrays["individual_rewards"])
    return arrays


def evaluate(env: TeamEnv, policy: Policy, episodes: int, seed: int) -> np.ndarray:
    """Team returns of `episodes` deterministic episodes."""
    return np.asarray(run_episodes(env, policy, episodes, seed).returns)
