"""MA-ICQ for discrete actions (SMAX), as ICQ-MA on SMAC (Yang et al. 2021, "Believe what you see").

Every agent has a critic Q_i(o_i, .) with one value per action and a categorical policy
pi_i(. | o_i), a softmax over its *available* actions. With `mixer: true` (the MA-ICQ baseline,
team reward) the critics at the dataset actions are mixed by continuous MA-ICQ's linear
state-conditioned mixer, Q_tot = sum_i k_i(s) Q_i(o_i, a_i) + b(s); the target, the critic loss and
the weights are maicq.py's (`implicit_target`, `critic_step`, `actor_weights`):

  critic:  L2^tau( y - Q_tot(s, a) ),  y = R + gamma (1 - terminal) w * Qbar_tot(s', a'),
           a' the dataset's next joint action, w = B softmax_batch(Qbar_tot(s', a') / T_c)
  actor:   - k_i(s) w_i log pi_i(a_i | o_i),   w_i = B softmax_batch(A_i / T_a),
           A_i = Q_i(o_i, a_i) - sum_{b in avail(o_i)} pi_i(b | o_i) Q_i(o_i, b)   (ICQ's baseline)

so neither update evaluates the critic at an action outside the data except through the policy's
expectation in the baseline, as in ICQ. Where the dataset has no next action (an episode's last
step) a' is the policy's greedy action over the next step's available actions. `mixer: false`
(per-agent rewards, MACCA-ICQ): each Q_i regresses on its own reward with the same target and the
actor uses w_i alone, as continuous MA-ICQ. Temperatures are in batch standard deviations (maicq.py).
"""
from __future__ import annotations

import copy

import torch

from ..envs.base import EnvSpec
from ..hparams import MAICQConfig
from .common import (DiscreteBackbone, in_precision, masked_argmax, masked_log_softmax,
                     stacked_policy, stacked_q, take)
from .maicq import MAICQ, LinearMixer, actor_weights, critic_step, implicit_target, finish_update


def weighted_log_likelihood(logp_data: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """ICQ's actor loss per agent [N]: mean over the batch of -w log pi(a | o) at the dataset
    actions. logp_data, w [N, B]."""
    return -(w * logp_data).mean(dim=-1)


def policy_baseline(logp: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """sum_b pi(b | o) Q(o, b) over the available actions (pi is 0 elsewhere): [N, B, A] -> [N, B]."""
    return (logp.exp() * q).sum(dim=-1)


class DiscreteMAICQ(DiscreteBackbone):
    def __init__(self, spec: EnvSpec, cfg: MAICQConfig, device: torch.device, seed: int):
        self.cfg, self.spec, self.device = cfg, spec, torch.device(device)
        self.n, O, A = spec.n_agents, spec.obs_dim, spec.action_dim
        self.mask = torch.as_tensor(spec.action_mask(), device=self.device).bool()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.actor = stacked_policy(self.n, O, A, cfg)
            self.critic = stacked_q(self.n, O, A, cfg)
            self.mixer = LinearMixer(spec.state_dim, cfg.hidden, self.n) if cfg.mixer else None
        for m in (self.actor, self.critic, self.mixer):
            if m is not None:
                m.to(self.device)
        self.critic_t, self.mixer_t = copy.deepcopy(self.critic), copy.deepcopy(self.mixer)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        critic_params = [*self.critic.parameters(), *(self.mixer.parameters() if self.mixer else [])]
        self.critic_opt = torch.optim.Adam(critic_params, lr=cfg.critic_lr)
        self.acting = self.actor
        self.updates = 0

    @in_precision
    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.cfg
        obs, act, nobs, avail, navail = self.unpack(batch)
        with torch.no_grad():
            greedy = masked_argmax(self.actor(nobs), navail)
            next_act = torch.where(batch["next_action_valid"][None], batch["next_actions"].T.long(), greedy)
            y = implicit_target(take(self.critic_t(nobs), next_act), batch, c, self.mixer_t)
        q_data = take(self.critic(obs), act)
        critic_loss = critic_step(self, q_data, y, batch)

        logp = masked_log_softmax(self.actor(obs), avail)
        with torch.no_grad():
            q = self.critic(obs).float()
            adv = take(q, act) - policy_baseline(logp.detach(), q)                              # [N, B]
            w = actor_weights(adv, batch, c, self.mixer)
        actor_loss = weighted_log_likelihood(take(logp, act), w)                               # [N]
        return finish_update(self, actor_loss, critic_loss, q_data, adv)

    _modules = MAICQ._modules   # the same networks and optimisers under the same names
