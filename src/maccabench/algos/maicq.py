"""MA-ICQ: implicit constraint Q-learning in the CTDE setting (Yang et al. 2021, "Believe what you
see"; MACCA paper, eq. 9), for continuous actions.

ICQ's idea: never evaluate the critic at actions the data does not contain. The value target
bootstraps from the dataset's own next action (SARSA-style) re-weighted by importance weights,
and the actors are trained by advantage-weighted regression onto dataset actions, so extrapolation
error cannot enter either update.

What this module implements, and where it departs from ICQ's discrete SMAC code:

* Critic (team reward, `mixer: true`, the MA-ICQ baseline). Per-agent utilities Q_i(o_i, a_i)
  are mixed by ICQ-MA's linear, state-conditioned decomposition
      Q_tot(s, a) = sum_i k_i(s) Q_i(o_i, a_i) + b(s),   k_i(s) >= 0,
  and regressed on  y = R + gamma (1 - terminal) w * Qbar_tot(s', a'),  where a' is the dataset's
  next joint action and w = B * softmax over the batch of Qbar_tot(s', a') / temperature
  (ICQ's critic importance weights, normalised over the mini-batch as in ICQ's code).
* Critic loss: the expectile loss L2^tau of eq. 9, 2|tau - 1(u < 0)| u^2 with u = y - Q; at the
  default tau = 0.5 it is ICQ's squared TD error.
* Actors (decentralised): ICQ minimises -k_i(s) w_i log pi_i(a_i | o_i) with
  w_i = B * softmax_batch(A_i / beta). With a deterministic actor read as a fixed-width Gaussian,
  -log pi_i(a_i | o_i) = |pi_i(o_i) - a_i|^2 up to constants, so the actor regresses onto the
  dataset actions weighted by k_i(s) w_i. The advantage baseline is the agent's value at its own
  policy action, A_i = Q_i(o_i, a_i) - Q_i(o_i, pi_i(o_i)), in place of ICQ's expectation over
  discrete actions.
* Temperatures are in units of the batch standard deviation (softmax(x / (T * std(x)))): ICQ's
  constants (critic 1000, actor 0.1) are in SMAC reward units, while MPE's reward scales differ
  by task (CN about -100 per episode, PP +10 per catch); dividing by the batch std makes one
  setting meaningful for every env.
* Where the dataset has no next action (the last step of an episode: MPE truncates every episode
  at 25 steps), the actor's action pi_i(o') stands in for a'.

With `input_norm`, every forward pass of `update` (targets and advantage weights included) runs
in train mode on its own batch's statistics and `act` on the running ones, as for I-CQL and OMAR.
The mixer reads the joint state and has no input BatchNorm.

Per-agent rewards (MACCA-ICQ, `mixer: false`). With rewards r_hat_i from MACCA's causal model
there is nothing left to decompose: each agent's Q_i regresses on its own reward with the same
implicit-constraint target, y_i = r_i + gamma (1 - terminal) w_i Qbar_i(o'_i, a'_i), and its actor
uses w_i alone. This is eq. 9 as the paper writes it ("we do not directly decompose the value
function"). A mixer over per-agent rewards would sum them back into the team reward and undo the
credit assignment, so a config pairing `mixer: true` with a per-agent reward assigner is rejected.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..envs.base import EnvSpec
from ..nets import soft_update
from ..hparams import MAICQConfig
from .common import (ActorBackbone, agent_major, clip_grad_norm_per_agent, in_precision,
                     stacked_actor, stacked_critic)
from .icql import td_target


# ---- the losses, as functions of tensors ---------------------------------------------------------

def batch_weights(x: torch.Tensor, temperature: float) -> torch.Tensor:
    """B * softmax over the last (batch) axis of x / (temperature * std(x)): mean weight 1."""
    scale = temperature * x.std(dim=-1, correction=0, keepdim=True) + 1e-8
    return x.shape[-1] * torch.softmax(x / scale, dim=-1)


def expectile_loss(u: torch.Tensor, tau: float) -> torch.Tensor:
    """2 |tau - 1(u < 0)| u^2 (elementwise); tau = 0.5 gives u^2."""
    return 2 * torch.abs(tau - (u < 0).to(u.dtype)) * u.pow(2)


def weighted_regression(pi: torch.Tensor, act: torch.Tensor, w: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-agent [N] mean over the batch of w * mean over real action dims of (pi - a)^2.
    pi, act [N, B, A]; w [N, B]; mask [N, A]."""
    sq = ((pi - act).pow(2) * mask[:, None]).sum(dim=-1) / mask.sum(dim=-1, keepdim=True)
    return (w * sq).mean(dim=-1)


def implicit_target(next_q: torch.Tensor, batch: dict, cfg: MAICQConfig, mixer_t: "LinearMixer | None") -> torch.Tensor:
    """ICQ's critic target from the target critics' Q_i at the next (dataset) actions, next_q
    [N, B]: with the target mixer, y = R + gamma (1 - terminal) w Qbar_tot(s', a') [B]; without,
    y_i = r_i + gamma (1 - terminal) w_i Qbar_i(o'_i, a'_i) [N, B]; w = batch_weights at the
    critic temperature."""
    if mixer_t is not None:
        next_v = mixer_t(next_q, batch["next_state"])                                       # [B]
        return td_target(batch["team_rewards"], batch["terminals"], cfg.gamma,
                         batch_weights(next_v, cfg.critic_temperature) * next_v)
    return td_target(batch["rewards"].T, batch["terminals"], cfg.gamma,
                     batch_weights(next_q, cfg.critic_temperature) * next_q)


def actor_weights(adv: torch.Tensor, batch: dict, cfg: MAICQConfig, mixer: "LinearMixer | None") -> torch.Tensor:
    """ICQ's actor weights [N, B] from advantages [N, B]: batch_weights at the actor temperature,
    times the mixer's k_i(s) where there is one."""
    w = batch_weights(adv, cfg.actor_temperature)
    return w * mixer.coefficients(batch["state"])[0] if mixer is not None else w


def critic_step(backbone, q_data: torch.Tensor, y: torch.Tensor, batch: dict) -> torch.Tensor:
    """One step of an MA-ICQ backbone's critic (and mixer) on Q_i at the dataset actions q_data [N, B]
    towards y: expectile loss (eq. 9), per-agent clipping of the critics, the mixer clipped on its
    own. Returns the loss ([] with the mixer, [N] without)."""
    c, mixer = backbone.cfg, backbone.mixer
    pred = mixer(q_data, batch["state"]) if mixer is not None else q_data
    loss = expectile_loss(y - pred, c.expectile).mean(dim=-1)
    backbone.critic_opt.zero_grad(set_to_none=True)
    loss.sum().backward()
    clip_grad_norm_per_agent(list(backbone.critic.parameters()), backbone.n, c.grad_clip)
    if mixer is not None:
        torch.nn.utils.clip_grad_norm_(mixer.parameters(), c.grad_clip)
    backbone.critic_opt.step()
    return loss


def soft_update_critic(backbone) -> None:
    soft_update(backbone.critic_t, backbone.critic, backbone.cfg.tau)
    if backbone.mixer is not None:
        soft_update(backbone.mixer_t, backbone.mixer, backbone.cfg.tau)


class LinearMixer(nn.Module):
    """Q_tot(s) = sum_i k_i(s) Q_i + b(s) with k_i = |.| of a state-conditioned MLP (ICQ-MA)."""

    def __init__(self, state_dim: int, hidden: int, n: int):
        super().__init__()
        self.n = n
        self.net = nn.Sequential(nn.Linear(state_dim, hidden), nn.ReLU(), nn.Linear(hidden, n + 1))

    def coefficients(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """k [N, B] (non-negative), b [B] for joint states [B, S]."""
        h = self.net(state)
        return h[:, : self.n].abs().T, h[:, self.n]

    def forward(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """q [N, B] -> Q_tot [B]"""
        k, b = self.coefficients(state)
        return (k * q).sum(dim=0) + b


def finish_update(bb, actor_loss: torch.Tensor, critic_loss: torch.Tensor, q_data: torch.Tensor,
                  adv: torch.Tensor) -> dict[str, torch.Tensor]:
    """What both MA-ICQs do after their losses: the actors' step (per-agent clipping), the
    critics' target update, and the update's stats."""
    bb.actor_opt.zero_grad(set_to_none=True)
    actor_loss.sum().backward()
    clip_grad_norm_per_agent(list(bb.actor.parameters()), bb.n, bb.cfg.grad_clip)
    bb.actor_opt.step()
    soft_update_critic(bb)
    bb.updates += 1
    return {"losses/critic": critic_loss.detach().mean(), "losses/actor": actor_loss.detach().mean(),
            "losses/q_data": q_data.detach().mean(), "losses/advantage": adv.mean()}


class MAICQ(ActorBackbone):
    def __init__(self, spec: EnvSpec, cfg: MAICQConfig, device: torch.device, seed: int):
        self.cfg = cfg
        self.spec, self.device = spec, torch.device(device)
        self.n, O, A = spec.n_agents, spec.obs_dim, spec.action_dim
        self.mask = torch.as_tensor(spec.action_mask(), device=self.device)
        h = self.cfg.hidden
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.actor = stacked_actor(self.n, O, A, cfg)
            self.critic = stacked_critic(self.n, O + A, cfg)
            self.mixer = LinearMixer(spec.state_dim, h, self.n) if self.cfg.mixer else None
        for m in (self.actor, self.critic, self.mixer):
            if m is not None:
                m.to(self.device)
        self.critic_t, self.mixer_t = copy.deepcopy(self.critic), copy.deepcopy(self.mixer)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=self.cfg.actor_lr)
        critic_params = [*self.critic.parameters(), *(self.mixer.parameters() if self.mixer else [])]
        self.critic_opt = torch.optim.Adam(critic_params, lr=self.cfg.critic_lr)
        self.updates = 0

    @in_precision
    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        c = self.cfg
        obs, act, nobs = (agent_major(batch[k]) for k in ("obs", "actions", "next_obs"))
        with torch.no_grad():
            valid = batch["next_action_valid"][None, :, None]
            next_act = torch.where(valid, agent_major(batch["next_actions"]), self.pi(self.actor, nobs))
            y = implicit_target(self.q(self.critic_t, nobs, next_act), batch, c, self.mixer_t)
        q_data = self.q(self.critic, obs, act)
        critic_loss = critic_step(self, q_data, y, batch)

        pi = self.pi(self.actor, obs)
        with torch.no_grad():
            adv = self.q(self.critic, obs, act) - self.q(self.critic, obs, pi.detach())   # [N, B]
            w = actor_weights(adv, batch, c, self.mixer)
        actor_loss = weighted_regression(pi, act, w, self.mask)                             # [N]
        return finish_update(self, actor_loss, critic_loss, q_data, adv)

    def _modules(self) -> dict:
        mods = {"actor": self.actor, "critic": self.critic, "critic_t": self.critic_t, "actor_opt": self.actor_opt,
                "critic_opt": self.critic_opt}
        if self.mixer is not None:
            mods.update(mixer=self.mixer, mixer_t=self.mixer_t)
        return mods
