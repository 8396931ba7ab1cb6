"""SQDDPG: Shapley Q-value deep deterministic policy gradient (Wang, Wu, Wang, Li, Tang 2020,
"Shapley Q-value: A Local Reward Approach to Solve Global Reward Games", AAAI; code:
hsvgbkhgbv/SQDDPG) on offline team-reward data with discrete actions.

Critic: for each agent i a network Phi_i(s, a_{C_i + {i}}) approximating i's marginal
contribution when it joins coalition C_i; its input is the joint state and the joint action with
the actions of agents outside C_i + {i} zeroed (one-hot actions, [N * A]). The Shapley Q-value is
the mean over K random orderings (C_i: the agents before i in one),

  Q_i^Phi(s, a) = 1/K sum_k Phi_i(s, a_{C_i^k + {i}}),

and the critic is fitted on the team reward through efficiency, sum_i Q_i^Phi = Q_tot:

  critic: (sum_i Q_i^Phi(s, a) - y)^2,  y = R + gamma (1 - terminal) sum_i Qbar_i^Phi(s', a'),
          a'_i the target actor's greedy available action (one-hot), fresh orderings at s'
  actor i: -Q_i^Phi(s, a_{-i}, p_i),  p_i = softmax over agent i's available actions of its
          logits / relax_temperature (the relaxed action), a_{-i} the dataset's (one-hot)

Each actor ascends its own Shapley Q-value only: the critic's parameters are frozen in the actor
step and only agent i's action slot is its policy's. Acting is the argmax of the logits over the
available actions. Targets (actors and critics) follow by soft updates (`tau`).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from ..envs.base import EnvSpec
from ..hparams import SQDDPGConfig
from ..nets import AgentMLP, soft_update
from .common import (DiscreteBackbone, agent_major, stacked_policy, clip_grad_norm_per_agent, generator_for, in_precision,
                     masked_argmax)
from .credit import batch_tensors, masked_softmax, predecessors, random_orderings
from .icql import no_param_grad


# ---- the pieces, as functions of tensors -----------------------------------------------------------

def coalition_actions(joint: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Each agent's critic input actions: the joint action with every agent outside C_i + {i}
    zeroed. joint [N_i, B, N_j, A] (agent i's view of the joint action), positions [B, K, N]
    -> [N_i, B, K, N_j * A]."""
    N, B, _, A = joint.shape
    member = predecessors(positions, include_self=True).permute(2, 0, 1, 3)           # [N_i, B, K, N_j]
    return (member[..., None] * joint[:, :, None]).reshape(N, B, positions.shape[1], N * A)


def own_slot(joint: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
    """Agent i's view of the joint action with its own slot replaced: joint [B, N, A] (every
    agent's action), own [N, B, A] (agent i's replacement) -> [N_i, B, N_j, A]."""
    N = own.shape[0]
    eye = torch.eye(N, device=own.device, dtype=own.dtype)[:, None, :, None]          # [N_i, 1, N_j, 1]
    return joint[None] * (1 - eye) + own[:, :, None, :] * eye


class SQDDPG(DiscreteBackbone):
    def __init__(self, spec: EnvSpec, cfg: SQDDPGConfig, device: torch.device, seed: int):
        self.spec, self.cfg, self.device = spec, cfg, torch.device(device)
        self.n, O, A, S = spec.n_agents, spec.obs_dim, spec.action_dim, spec.state_dim
        self.mask = torch.as_tensor(spec.action_mask(), device=self.device).bool()      # [N, A] real actions
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.actor = stacked_policy(self.n, O, A, cfg)
            self.acting = self.actor   # DiscreteBackbone.act: greedy over its scores
            self.critic = AgentMLP(self.n, S + self.n * A, cfg.hidden, 1)
        self.actor.to(self.device), self.critic.to(self.device)
        self.actor_t, self.critic_t = copy.deepcopy(self.actor), copy.deepcopy(self.critic)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.gen = generator_for(self.device, seed)
        self.updates = 0

    def shapley_q(self, critic: AgentMLP, state: torch.Tensor, joint: torch.Tensor) -> torch.Tensor:
        """Q_i^Phi for every agent: state [B, S], joint [N_i, B, N_j, A] -> [N, B], over
        `coalition_samples` fresh random orderings per state."""
        B = state.shape[0]
        positions = random_orderings(B, self.cfg.coalition_samples, self.n, self.gen, self.device)
        acts = coalition_actions(joint, positions)                                        # [N, B, K, N*A]
        return critic.forward_sampled(state.expand(self.n, *state.shape), acts).squeeze(-1).mean(dim=-1)

    @in_precision
    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.cfg
        actions, avail, next_avail, team_reward = batch_tensors(batch)
        A = self.spec.action_dim
        obs, nobs = agent_major(batch["obs"]), agent_major(batch["next_obs"])
        data_joint = F.one_hot(actions, A).float()                                        # [B, N, A]
        with torch.no_grad():
            next_act = masked_argmax(self.actor_t(nobs), agent_major(next_avail)).T              # [B, N]
            next_joint = F.one_hot(next_act, A).float()
            q_next = self.shapley_q(self.critic_t, batch["next_state"], next_joint[None].expand(self.n, -1, -1, -1))
            y = team_reward + c.gamma * (1.0 - batch["terminals"]) * q_next.sum(0)
        q = self.shapley_q(self.critic, batch["state"], data_joint[None].expand(self.n, -1, -1, -1))   # [N, B]
        critic_loss = (q.sum(0) - y).pow(2).mean()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        clip_grad_norm_per_agent(list(self.critic.parameters()), self.n, c.grad_clip)
        self.critic_opt.step()

        probs = masked_softmax(self.actor(obs), agent_major(avail), c.relax_temperature)   # [N, B, A]
        with no_param_grad(self.critic):
            q_pi = self.shapley_q(self.critic, batch["state"], own_slot(data_joint, probs))
        actor_loss = -q_pi.mean(dim=-1)                                                   # [N]
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.sum().backward()
        clip_grad_norm_per_agent(list(self.actor.parameters()), self.n, c.grad_clip)
        self.actor_opt.step()

        soft_update(self.actor_t, self.actor, c.tau)
        soft_update(self.critic_t, self.critic, c.tau)
        self.updates += 1
        entropy = -(probs.detach() * probs.detach().clamp(min=1e-12).log()).sum(-1).mean()
        return {"losses/critic": critic_loss.detach(), "losses/td": critic_loss.detach(),
                "losses/actor": actor_loss.detach().mean(), "losses/q_data": q.detach().sum(0).mean(),
                "losses/policy_entropy": entropy}

    def _modules(self) -> dict:
        return {"actor": self.actor, "critic": self.critic, "actor_t": self.actor_t, "critic_t": self.critic_t,
                "actor_opt": self.actor_opt, "critic_opt": self.critic_opt}
