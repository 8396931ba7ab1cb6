"""IPPO (de Witt et al. 2020, "Is Independent Learning All You Need in the StarCraft Multi-Agent
Challenge?"): PPO for every agent on its own observation, with one feed-forward actor and one
critic V(o_i) shared by all agents (as jaxmarl's IPPO baseline for SMAX). The discrete learner of
registry.BEHAVIOR_LEARNERS (the interface: behavior/online.py).

- Policy: a softmax over the *available* actions only (`masked_logits`): an unavailable action has
  probability exactly 0, so it is never sampled and carries no gradient.
- Reward: every agent learns on the team reward (the sum of the individual rewards; SMAX's own
  reward), so the game's agents must all be the team: there are no opponents to train.
- Schedule: `rollout_steps` steps of every env, then `epochs` passes of `minibatches` PPO updates
  (the learning rate decaying linearly to 0 over the run where `anneal_lr`);
  GAE(lambda) with the value of the next observation bootstrapped where an episode was truncated
  (the time limit, or a cut at a checkpoint) and not where it terminated.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.distributions import Categorical

from ..errors import MaccabenchError
from ..nets import AgentMLP


def masked_logits(logits: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """Logits with every unavailable action at the lowest finite value: its softmax probability is
    exactly 0 (and entropies stay finite). logits [..., A], avail bool [..., A]."""
    return torch.where(avail, logits, torch.finfo(logits.dtype).min)


class IPPO:
    def __init__(self, game, job: dict):
        torch.manual_seed(job["seed"])
        hp = job["behavior"]
        team = job["env"]["team"]
        if sorted(team) != sorted(game.agents):
            raise MaccabenchError(f"env {job['env']['name']}: IPPO learns on the team reward, so every agent must be "
                                  f"in the team (the game has {', '.join(game.agents)}; the team is {', '.join(team)}). "
                                  "Fix: name another behaviour learner under behavior.learner, or put every agent in the team")
        self.hp, self.total_steps = hp, job["env_steps"]
        self.n, self.O, self.A = len(game.agents), max(game.obs_dims), max(game.action_dims)
        self.actor = AgentMLP(1, self.O, hp["hidden"], self.A)     # one network, every agent's rows
        self.critic = AgentMLP(1, self.O, hp["hidden"], 1)
        self.opt = torch.optim.Adam([*self.actor.parameters(), *self.critic.parameters()], lr=hp["lr"], eps=1e-5)
        self._stacked = AgentMLP(self.n, self.O, hp["hidden"], self.A)   # policies.pt's layout: a copy per agent
        self.updates = 0
        self.rollout: list[dict] = []
        self._last: dict | None = None    # log-probabilities and values of the last explore()

    def _flat(self, obs) -> torch.Tensor:           # [..., n, O] -> [1, B, O]: every agent one row of one net
        return torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1, self.O)

    # ---- the behaviour learner's interface (behavior/online.py) ---------------------------------
    def stacked_actor(self) -> AgentMLP:
        with torch.no_grad():
            for name, t in self.actor.state_dict().items():
                self._stacked.state_dict()[name].copy_(t.expand_as(self._stacked.state_dict()[name]))
        return self._stacked

    @torch.no_grad()
    def explore(self, obs: np.ndarray, avail: np.ndarray, steps: int, rng) -> np.ndarray:
        """Actions sampled from the masked softmax: obs [K, n, O], avail bool [K, n, A] -> int64 [K, n]."""
        K = len(obs)
        x = self._flat(obs)
        dist = Categorical(logits=masked_logits(self.actor(x)[0], torch.as_tensor(avail).reshape(-1, self.A)))
        a = dist.sample()
        self._last = {"logp": dist.log_prob(a), "value": self.critic(x)[0, :, 0]}
        return a.view(K, self.n).numpy()

    def learn(self, run, step: dict) -> None:
        """Store the step; a PPO update once the rollout holds `rollout_steps` steps."""
        team_reward = np.repeat(step["rewards"].sum(-1, keepdims=True), self.n, axis=1)   # [K, n]
        ended = torch.tensor(step["terminals"] | step["timeouts"])
        self.rollout.append({"obs": torch.tensor(step["obs"]).reshape(-1, self.O),
                             "next_obs": torch.tensor(step["next_obs"]).reshape(-1, self.O),
                             "avail": torch.tensor(step["avail_actions"]).reshape(-1, self.A),
                             "actions": torch.tensor(step["actions"]).reshape(-1),
                             "rewards": torch.tensor(team_reward, dtype=torch.float32).reshape(-1),
                             "terminals": torch.tensor(step["terminals"]).repeat_interleave(self.n).float(),
                             "ended": ended.repeat_interleave(self.n).float(), **self._last})
        if len(self.rollout) >= self.hp["rollout_steps"]:
            if self.hp["anneal_lr"]:    # from the env steps done before this rollout, so a resumed run agrees
                done = run.steps - len(self.rollout) * len(step["obs"])
                for group in self.opt.param_groups:
                    group["lr"] = self.hp["lr"] * (1 - done / self.total_steps)
            self._update()
            self.rollout = []

    # ---- PPO ------------------------------------------------------------------------------------
    @torch.no_grad()
    def _advantages(self, r: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """GAE over the rollout, [T, B] each: (advantages, returns)."""
        hp, (T, B) = self.hp, r["rewards"].shape
        next_v = self.critic(r["next_obs"].reshape(1, T * B, self.O))[0, :, 0].view(T, B)
        delta = r["rewards"] + hp["gamma"] * (1 - r["terminals"]) * next_v - r["value"]
        adv = torch.zeros_like(delta)
        running = torch.zeros(B)
        for t in range(T - 1, -1, -1):
            running = delta[t] + hp["gamma"] * hp["gae_lambda"] * (1 - r["ended"][t]) * running
            adv[t] = running
        return adv, adv + r["value"]

    def _update(self) -> None:
        hp = self.hp
        r = {k: torch.stack([s[k] for s in self.rollout]) for k in self.rollout[0]}
        adv, ret = self._advantages(r)
        flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in r.items()}
        adv, ret = adv.reshape(-1), ret.reshape(-1)
        n = len(adv)
        size = -(-n // hp["minibatches"])
        params = [*self.actor.parameters(), *self.critic.parameters()]
        for _ in range(hp["epochs"]):
            perm = torch.randperm(n)
            for i in range(0, n, size):
                idx = perm[i: i + size]
                x = flat["obs"][idx].unsqueeze(0)
                dist = Categorical(logits=masked_logits(self.actor(x)[0], flat["avail"][idx]))
                logp = dist.log_prob(flat["actions"][idx])
                a = adv[idx]
                a = (a - a.mean()) / (a.std() + 1e-8)
                ratio = torch.exp(logp - flat["logp"][idx])
                pg_loss = -torch.min(ratio * a, ratio.clamp(1 - hp["clip_eps"], 1 + hp["clip_eps"]) * a).mean()
                v_loss = 0.5 * (self.critic(x)[0, :, 0] - ret[idx]).pow(2).mean()
                loss = pg_loss + hp["vf_coef"] * v_loss - hp["ent_coef"] * dist.entropy().mean()
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, hp["max_grad_norm"])
                self.opt.step()
                self.updates += 1

    # ---- resume points ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(), "opt": self.opt.state_dict(),
                "updates": self.updates, "rollout": self.rollout}

    def load_state_dict(self, d: dict) -> None:
        self.actor.load_state_dict(d["actor"])
        self.critic.load_state_dict(d["critic"])
        self.opt.load_state_dict(d["opt"])
        self.updates, self.rollout = d["updates"], d["rollout"]
