"""Pieces every backbone shares: masked means over padded action dimensions, per-agent gradient
clipping, the agent-major layout helpers, checkpoints (`Backbone`), and for discrete actions the
max, argmax, softmax and log-sum-exp restricted to available actions (`DiscreteBackbone`). (Their typed hyper-parameters, torch-free, are in
`maccabench.hparams`.)

Layout: the loop's batches are [B, N, ...]; backbones work agent-major ([N, B, ...]) because
`nets.AgentMLP` runs every agent's network as one batched matmul over that layout.
"""
from __future__ import annotations

import abc
import functools

import numpy as np
import torch

from ..hparams import BackboneConfig
from ..nets import AgentMLP, eval_mode


# ---- tensors ----------------------------------------------------------------------------------

def agent_major(x: torch.Tensor) -> torch.Tensor:
    """[B, N, ...] -> [N, B, ...]"""
    return x.transpose(0, 1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the batch and each agent's *real* action dimensions. x [N, B, A], mask [N, A]
    -> [N]. Padded dimensions (agents with fewer actions) count for nothing."""
    return (x * mask[:, None]).sum(dim=(1, 2)) / (mask.sum(dim=1) * x.shape[1])


# ---- discrete actions: every reduction over actions restricted to the available ones ------------

# The score an unavailable action gets before a max, argmax, softmax or log-sum-exp: large and
# finite, so a row with no available action gives finite results (a uniform softmax) where -inf
# arithmetic would give NaN. Representable in bf16 (autocast) as in fp32.
UNAVAILABLE = -1e9


def mask_unavailable(x: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """x [..., A] with UNAVAILABLE where avail [..., A] (bool) is false; no gradient flows there."""
    return x.masked_fill(~avail, UNAVAILABLE)


def masked_argmax(x: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """The best available action: [..., A] -> int64 [...]."""
    return mask_unavailable(x, avail).argmax(dim=-1)


def masked_max(x: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """max over the available actions: [..., A] -> [...]."""
    return mask_unavailable(x, avail).amax(dim=-1)


def masked_logsumexp(x: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """log sum over the available actions of exp(x): [..., A] -> [...]."""
    return torch.logsumexp(mask_unavailable(x, avail), dim=-1)


def masked_log_softmax(logits: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """log pi(a) of the softmax over the available actions, [..., A] (unavailable: about -1e9,
    so pi = exp(log pi) is exactly 0 there)."""
    return torch.log_softmax(mask_unavailable(logits, avail), dim=-1)


def take(x: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """x [..., A] at integer actions [...] -> [...]."""
    return x.gather(-1, actions.unsqueeze(-1)).squeeze(-1)


def clip_grad_norm_per_agent(params, n: int, max_norm: float) -> torch.Tensor:
    """Clip each agent's gradient norm separately, as if every agent had its own optimiser
    (OMAR clips each agent's critic and actor at 0.5). Parameters are stacked per agent along
    dim 0 (`AgentLinear`: [n, ...]). Returns the per-agent norms before clipping."""
    grads = [p.grad for p in params if p.grad is not None]
    sq = torch.zeros(n, device=grads[0].device)
    for g in grads:
        sq += g.reshape(n, -1).pow(2).sum(dim=1)
    norms = sq.sqrt()
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(n, *([1] * (g.dim() - 1))))
    return norms


# The backbone options (`training.common`) that reproduce OMAR's MPE networks (ling-pan/OMAR,
# utils/networks.py): BatchNorm1d on every actor and critic input, actors' last layer in +-3e-3.
OMAR_NETWORKS = {"input_norm": True, "actor_last_init": 3e-3}


def stacked_actor(n: int, obs_dim: int, action_dim: int, cfg: BackboneConfig) -> AgentMLP:
    """Every agent's deterministic tanh actor, with the config's network options (OMAR: input
    BatchNorm and a last layer in +-3e-3)."""
    return AgentMLP(n, obs_dim, cfg.hidden, action_dim, out_act="tanh", input_norm=cfg.input_norm,
                    last_init=cfg.actor_last_init)


def stacked_critic(n: int, in_dim: int, cfg: BackboneConfig) -> AgentMLP:
    """Every agent's critic on (o_i, a_i): input BatchNorm as the actors, default initialisation
    everywhere (as OMAR's critics)."""
    return AgentMLP(n, in_dim, cfg.hidden, 1, input_norm=cfg.input_norm)


def stacked_q(n: int, obs_dim: int, action_dim: int, cfg: BackboneConfig) -> AgentMLP:
    """Every agent's discrete critic Q_i(o_i, .): one output per action (padded to the widest
    agent), default initialisation (as the continuous critics), the config's input BatchNorm."""
    return AgentMLP(n, obs_dim, cfg.hidden, action_dim, input_norm=cfg.input_norm)


def stacked_policy(n: int, obs_dim: int, action_dim: int, cfg: BackboneConfig) -> AgentMLP:
    """Every agent's categorical policy: logits over its actions (the softmax is taken over the
    available ones), with the actors' network options (a last layer in +-actor_last_init starts
    every policy near uniform over the available actions)."""
    return AgentMLP(n, obs_dim, cfg.hidden, action_dim, input_norm=cfg.input_norm, last_init=cfg.actor_last_init)


def in_precision(update):
    """Run a backbone's `update(batch)` in its config's `precision`: bf16 = under bf16 autocast (the
    matrix products and their backward in bf16; parameters, Adam and autocast's fp32 ops stay fp32)."""
    @functools.wraps(update)
    def run(self, batch):
        if self.cfg.precision == "bf16":
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                return update(self, batch)
        return update(self, batch)
    return run


def generator_for(device: torch.device, seed: int) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


class Backbone(abc.ABC):
    """What every backbone shares: checkpoints. Subclasses set `device`, `updates`, `gen` (or
    None) and list their networks and optimisers in `_modules()` (their state_dicts carry
    BatchNorm's running statistics). The training loop calls `update(batch)` and, to evaluate,
    `act(obs, avail)` (avail: the available-action masks of discrete envs, None otherwise)."""
    device: torch.device
    gen: torch.Generator | None = None
    updates: int = 0

    @abc.abstractmethod
    def _modules(self) -> dict:
        """name -> network or optimiser: what state_dict saves and load_state_dict restores."""

    def state_dict(self) -> dict:
        return {**{k: m.state_dict() for k, m in self._modules().items()},
                "gen": self.gen.get_state() if self.gen is not None else None, "updates": self.updates}

    def load_state_dict(self, d: dict) -> None:
        for k, m in self._modules().items():
            m.load_state_dict(d[k])
        if self.gen is not None:
            self.gen.set_state(d["gen"])
        self.updates = int(d["updates"])


class ActorBackbone(Backbone):
    """Continuous backbones with deterministic stacked tanh actors: action selection and the
    critics' calls. Subclasses set `actor` and `mask` (the real action dimensions [N, A])."""
    actor: torch.nn.Module
    mask: torch.Tensor

    def pi(self, actor: torch.nn.Module, obs: torch.Tensor) -> torch.Tensor:
        """obs [N, B, O] -> actions [N, B, A], padded dimensions zero."""
        return actor(obs) * self.mask[:, None]

    @staticmethod
    def q(critic: torch.nn.Module, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Per-agent critic on (o_i, a_i): [N, B, O], [N, B, A] -> [N, B]"""
        return critic(torch.cat([obs, act], dim=-1)).squeeze(-1)

    @staticmethod
    def q_sampled(critic: torch.nn.Module, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Per-agent critic on M sampled actions per observation: [N, B, O], [N, B, M, A] -> [N, B, M],
        the observations' part of the first layer computed once (`AgentMLP.forward_sampled`)."""
        return critic.forward_sampled(obs, act).squeeze(-1)

    @torch.no_grad()
    def act(self, obs: np.ndarray, avail: np.ndarray | None = None) -> np.ndarray:
        """[K, N, O] -> [K, N, A], deterministic (evaluation; `avail` is None: continuous envs have
        no masks), the actor in eval mode (input BatchNorm on its running statistics, so an
        observation's action does not depend on the others it is batched with); every other
        forward pass, in `update`, runs in train mode."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device).transpose(0, 1)
        with eval_mode(self.actor):
            return self.pi(self.actor, x).transpose(0, 1).cpu().numpy()


class DiscreteBackbone(Backbone):
    """Discrete backbones: integer actions [B, N] and availability masks bool [B, N, A] in the batch
    (`actions`, `avail_actions`, `next_avail_actions`). Subclasses set `mask` (bool [N, A], the
    agents' real actions) and `acting`, the network whose per-action scores [N, K, A] are maximised
    over the available actions to act (Q^1 for I-CQL, the policy's logits for OMAR and MA-ICQ)."""
    mask: torch.Tensor
    acting: torch.nn.Module

    def available(self, avail: torch.Tensor) -> torch.Tensor:
        """Agent-major masks [N, B, A] of actions both available and real (not padding)."""
        return avail & self.mask[:, None]

    def unpack(self, batch: dict[str, torch.Tensor]):
        """The batch's obs, actions, next_obs [N, B, ...] and its two masks [N, B, A], agent-major."""
        obs, nobs = agent_major(batch["obs"]), agent_major(batch["next_obs"])
        act = agent_major(batch["actions"]).long()
        avail = self.available(agent_major(batch["avail_actions"]))
        navail = self.available(agent_major(batch["next_avail_actions"]))
        return obs, act, nobs, avail, navail

    @torch.no_grad()
    def act(self, obs: np.ndarray, avail: np.ndarray) -> np.ndarray:
        """obs [K, N, O], avail bool [K, N, A] -> the best available action per agent, int64 [K, N]
        (greedy, for evaluation), `acting` in eval mode (input BatchNorm on its running statistics)."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device).transpose(0, 1)
        av = self.available(torch.as_tensor(avail, dtype=torch.bool, device=self.device).transpose(0, 1))
        with eval_mode(self.acting):
            scores = self.acting(x)
        return masked_argmax(scores, av).transpose(0, 1).cpu().numpy()
