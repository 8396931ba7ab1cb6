"""MATD3 (Ackermann et al. 2019): MADDPG with TD3's fixes.

Per-agent deterministic actors, twin centralised critics per agent (input: all agents'
observations and actions), target policy smoothing and delayed actor/target updates. Off-policy:
it samples its updates from the run's replay (one per `update_every` env steps after
`start_steps` of uniform random actions). The continuous learner of registry.BEHAVIOR_LEARNERS
(the interface: behavior/online.py).
"""
from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from ..envs.base import action_mask
from ..nets import AgentMLP, soft_update
from ..rollout import actor_policy


class MATD3:
    def __init__(self, game, job: dict):
        torch.manual_seed(job["seed"])
        obs_dims, action_dims, hp = game.obs_dims, game.action_dims, job["behavior"]
        self.n, self.O, self.A = len(obs_dims), max(obs_dims), max(action_dims)
        self.hp, self.start_steps, self.update_every = hp, job["start_steps"], job["update_every"]
        self.action_mask = action_mask(action_dims)
        self.mask_t = torch.as_tensor(self.action_mask)
        joint = self.n * (self.O + self.A)
        self.actor = AgentMLP(self.n, self.O, hp["hidden"], self.A, out_act="tanh")
        self.q1 = AgentMLP(self.n, joint, hp["hidden"], 1)
        self.q2 = AgentMLP(self.n, joint, hp["hidden"], 1)
        self.actor_t, self.q1_t, self.q2_t = (copy.deepcopy(m) for m in (self.actor, self.q1, self.q2))
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=hp["actor_lr"])
        self.critic_opt = torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()], lr=hp["critic_lr"])
        self.updates, self.due_updates = 0, 0.0

    def state_dict(self) -> dict:
        nets = {k: getattr(self, k).state_dict() for k in ("actor", "q1", "q2", "actor_t", "q1_t", "q2_t",
                                                           "actor_opt", "critic_opt")}
        return {**nets, "updates": self.updates, "due_updates": self.due_updates}

    def load_state_dict(self, d: dict) -> None:
        for k, v in d.items():
            if k in ("updates", "due_updates"):
                setattr(self, k, v)
            else:
                getattr(self, k).load_state_dict(v)

    # ---- the behaviour learner's interface (behavior/online.py) ---------------------------------
    def stacked_actor(self):
        return self.actor

    def explore(self, obs: np.ndarray, avail, steps: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform random actions before `start_steps`, then the actors plus Gaussian noise."""
        K = len(obs)
        if steps < self.start_steps:
            act = rng.uniform(-1, 1, (K, self.n, self.A)).astype(np.float32)
        else:
            act = actor_policy(self.actor, self.action_mask)(obs)
            act = np.clip(act + self.hp["exploration_noise"] * rng.standard_normal(act.shape), -1, 1)
        return (act * self.action_mask).astype(np.float32)

    def learn(self, run, step: dict) -> None:
        """The updates due after `start_steps`: one per `update_every` env steps, from the replay."""
        if run.steps < self.start_steps:
            return
        self.due_updates += len(step["obs"]) / self.update_every
        while self.due_updates >= 1 and run.buf.size >= self.hp["batch_size"]:
            self.update(run.buf.sample(run.rng, self.hp["batch_size"]))
            self.due_updates -= 1

    def _pi(self, actor, obs):              # obs [B, N, O] -> actions [B, N, A]
        return (actor(obs.transpose(0, 1)) * self.mask_t[:, None]).transpose(0, 1)

    def _joint(self, obs, act):             # -> [N, B, N*(O+A)], the same input for every critic
        x = torch.cat([obs.flatten(1), act.flatten(1)], dim=1)
        return x.unsqueeze(0).expand(self.n, -1, -1)

    def update(self, b: dict) -> dict:
        hp = self.hp
        obs, act, rew, nobs, term = b["obs"], b["actions"], b["rewards"], b["next_obs"], b["terminals"]
        with torch.no_grad():
            noise = (torch.randn_like(act) * hp["policy_noise"]).clamp(-hp["noise_clip"], hp["noise_clip"])
            nact = ((self._pi(self.actor_t, nobs) + noise).clamp(-1, 1)) * self.mask_t
            xn = self._joint(nobs, nact)
            qn = torch.min(self.q1_t(xn), self.q2_t(xn)).squeeze(-1)          # [N, B]
            y = rew.T + hp["gamma"] * (1 - term)[None] * qn
        x = self._joint(obs, act)
        critic_loss = F.mse_loss(self.q1(x).squeeze(-1), y) + F.mse_loss(self.q2(x).squeeze(-1), y)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        out = {"critic_loss": critic_loss.item()}
        self.updates += 1
        if self.updates % hp["policy_delay"] == 0:
            pi = self._pi(self.actor, obs)                                    # [B, N, A]
            eye = torch.eye(self.n, dtype=torch.bool)[:, None, :, None]       # agent i swaps in its own action
            joint_act = torch.where(eye, pi.unsqueeze(0), act.unsqueeze(0))   # [N, B, N, A]
            xa = torch.cat([obs.flatten(1).unsqueeze(0).expand(self.n, -1, -1), joint_act.flatten(2)], dim=2)
            actor_loss = -self.q1(xa).mean() * self.n + 1e-3 * (pi ** 2).mean()
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_opt.step()
            for t, s in ((self.actor_t, self.actor), (self.q1_t, self.q1), (self.q2_t, self.q2)):
                soft_update(t, s, hp["tau"])
            out["actor_loss"] = actor_loss.item()
        return out
