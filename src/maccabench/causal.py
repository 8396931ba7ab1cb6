"""MACCA's causal reward model: team reward -> per-agent rewards (arXiv 2312.03644, section 3).

For agent i at time t the structure predictor psi_g gives mask probabilities over every dimension
of the joint state s_t and joint action a_t, `p_s^i = psi_g^{s->r}(s_t, a_t, i)` and
`p_a^i = psi_g^{a->r}(s_t, a_t, i)`; the reward predictor psi_r (three 256-wide ReLU layers, one
output) reads the masked inputs and the agent id: `r_hat^i = psi_r(c_s^i * s_t, c_a^i * a_t, i)`.
Training minimises the paper's Eq. 4-5 over a batch:

    L_m = mean_B (R - sum_i r_hat^i)^2 + lambda1 * mean_B sum_i |p_s^i|_1 + lambda2 * mean_B sum_i |p_a^i|_1

How the masks get gradients (the paper leaves this open). The masks are Bernoulli probabilities
p = sigmoid(psi_g(...)). In training the reward predictor sees a *relaxed Bernoulli sample* of
the mask (binary concrete / Gumbel-sigmoid, `temperature`), a reparameterised sample, so the
reward loss reaches both structure predictors and a dimension whose p is small is still tried
now and then (a plain straight-through threshold lost dimensions for good once L1 pushed them
below h, and the paper's literal choice, training on p * x, left p hovering near h and made the
thresholded relabel disagree with what was fitted). Sampling makes intermediate p costly, so
p settles near 0 or 1 and the relabel below matches training. At relabel time (`assign`)
entries below h become 0 and the rest 1 (`clip_h`, the paper's rule); without clipping
(`clip_h: false`, the Table 10 ablation) the probabilities themselves are the masks.

Variants (all options of this one model, see `hparams.CausalConfig`): `graph` dynamic (per sample, the paper's
method) | fixed (one graph per agent: a running average over training of the batch-mean mask
probabilities; gradients reach psi_g through the batch mean) | full (all ones, no psi_g, no L1);
`paradigm` alternate (Algorithm 1: `updates_per_step` causal updates on each batch before the
backbone's update) | pretrain (`pretrain_updates` causal-only updates first, then frozen; Table 11);
`precision` fp32 | bf16 (autocast of the matrix products; master weights and the loss stay fp32);
`times_n_agents` relabels with N times the fitted rewards (the reward-scale control: the same model).
Ground-truth individual rewards (Table 9) come only through `GroundTruthReward`, built from a raw
dataset by `read_ground_truth`, the one place training may read a raw file.

Speed. psi_g and psi_r are each one network over (input, one-hot agent id), evaluated for all N
agents as one [N*B, .] matrix product per layer (psi_r's first layer too: its weight is shared, so
the masked inputs of all agents go through one product). The one-hot id is kept as its own weight
block, so psi_g's first layer (whose input (s, a) is the same for every agent) runs once per sample
and adds each agent's id column, instead of N times. Relabelling (`assign`) is one forward pass
after the causal updates, not one per agent. The `updates_per_step` updates are sequential Adam
steps on one batch (each forward needs the previous step's weights), so nothing of their forward
work can be shared. What is left is the matrix products' own speed: on a 2-core Zen 4 the causal
step runs at 65-80% of a representative product's fp32 GFLOP/s and 55-60% of its bf16 GFLOP/s
(benchmarks/causal_speed.py prints both); the rest is memory-bound elementwise work (ReLU and its
backward, bias adds and sums, mask sampling).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .data import Dataset, read
from .envs.base import EnvSpec
from .errors import ConfigError, DatasetError, MaccabenchError
from .hparams import CausalConfig, parse_hp
from .registry import ASSIGNERS
from .rewards import RewardContext, make_assigner

class IdMLP(nn.Module):
    """MLP over (x, one-hot agent id) for all agents at once.

    The first layer is an nn.Linear over [x, one-hot(i)] (the paper's input), stored as one weight
    whose last N columns are the id block: `x W_x + W_id[:, i] + b`. `x` is [B, D] when it is the
    same for every agent (computed once, then the id column broadcast: [N, B, H]) or [N, B, D].
    """

    def __init__(self, n_agents: int, d_in: int, hidden: int, layers: int, d_out: int):
        super().__init__()
        self.d_in = d_in
        self.inp = nn.Linear(d_in + n_agents, hidden)
        body: list[nn.Module] = []
        for _ in range(layers - 1):
            body += [nn.ReLU(inplace=True), nn.Linear(hidden, hidden)]
        self.body = nn.Sequential(*body, nn.ReLU(inplace=True), nn.Linear(hidden, d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.inp.weight
        # [N, 1, H]; contiguous: broadcasting a transposed operand is ~10x slower on CPU
        id_cols = (w[:, self.d_in:].t() + self.inp.bias).contiguous().unsqueeze(1)
        if x.dim() == 2:    # shared input: one product, then each agent's id column
            h = F.linear(x, w[:, : self.d_in]).unsqueeze(0)
            h = h + id_cols.to(h.dtype)                                     # [N, B, H]
        else:               # per-agent input: one [N*B, D] product (the weight is shared), then the id columns
            n, b, d = x.shape
            h = F.linear(x.reshape(n * b, d), w[:, : self.d_in]).view(n, b, -1)
            h = h + id_cols.to(h.dtype)
        n, b, width = h.shape
        return self.body(h.reshape(n * b, width)).reshape(n, b, -1)


def joint_inputs(batch: dict[str, torch.Tensor], spec: EnvSpec) -> torch.Tensor:
    """[B, S + N*A]: the joint state and the concatenated (padded) joint action; discrete actions
    as one-hots over each agent's A actions, so the a->r mask has one entry per (agent, action)."""
    actions = batch["actions"]
    if spec.discrete:
        actions = F.one_hot(actions.long(), spec.action_dim).to(batch["state"].dtype)
    return torch.cat([batch["state"], actions.reshape(actions.shape[0], -1)], dim=-1)


class CausalRewardModel:
    """RewardAssigner: `update(batch) -> dict`, `assign(batch) -> [B, N]`, `state_dict`."""

    def __init__(self, spec: EnvSpec, cfg: CausalConfig, device: torch.device | str, seed: int,
                 truth: "GroundTruthReward | None" = None):
        self.spec, self.device = spec, torch.device(device)
        self.cfg = cfg
        self.n = spec.n_agents
        self.d_s, self.d_a = spec.state_dim, spec.n_agents * spec.action_dim
        self.d_in = self.d_s + self.d_a
        self.updates_per_step = self.cfg.updates_per_step or self.n
        self.truth = truth  # Table 9 "MACCA with GT": fit individual rewards instead of the team reward
        hidden, layers = self.cfg.hidden, self.cfg.layers
        with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching global RNG
            torch.manual_seed(seed)
            self.nets = nn.ModuleDict({"psi_r": IdMLP(self.n, self.d_in, hidden, layers, 1)})
            if self.cfg.graph != "full":
                # psi_g^{s->r} and psi_g^{a->r}: one trunk, two heads (state dims, action dims)
                self.nets["psi_g"] = IdMLP(self.n, self.d_in, hidden, layers, self.d_in)
        self.nets.to(self.device)
        self.psi_r, self.psi_g = self.nets["psi_r"], self.nets["psi_g"] if "psi_g" in self.nets else None
        # padded action dimensions are never causes: their mask is forced to 0
        self.real_dims = torch.ones(self.d_in, device=self.device)
        self.real_dims[self.d_s:] = torch.as_tensor(spec.action_mask()).reshape(-1)
        # L1 weight of each mask entry: lambda1 on state dims, lambda2 on action dims (one weighted sum in the loss)
        self.l1_weights = torch.full((self.d_in,), self.cfg.lambda1, device=self.device)
        self.l1_weights[self.d_s:] = self.cfg.lambda2
        self.fixed_probs = torch.full((self.n, self.d_in), float("nan"), device=self.device)  # graph: fixed
        self.n_updates = 0
        self.pretrain_target = self.cfg.pretrain_updates   # set from the run's length when 0 (see pretrain)
        self.gen = torch.Generator(device=self.device).manual_seed(seed)  # mask samples in training
        self.opt = torch.optim.Adam(self.nets.parameters(), lr=self.cfg.lr, fused=True)   # one kernel for all tensors

    # ---- the model ------------------------------------------------------------------------------
    def _autocast(self):
        if self.cfg.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def probabilities(self, x: torch.Tensor, train: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Mask probabilities p [N, B, S + N*A] for joint inputs x [B, S + N*A], and their logits
        (None for the fully connected graph). Padded action dimensions have p = 0."""
        if self.psi_g is None:  # fully connected graph
            return self.real_dims.expand(self.n, x.shape[0], -1), None
        logits = self.psi_g(x).float()
        p = torch.sigmoid(logits) * self.real_dims
        if self.cfg.graph == "fixed":
            # one graph per agent: the running average of batch-mean probabilities; in training the
            # gradient flows through this batch's mean
            batch_mean = p.mean(dim=1)
            if train:
                with torch.no_grad():
                    m = self.cfg.fixed_momentum
                    fresh = torch.isnan(self.fixed_probs)
                    self.fixed_probs.copy_(torch.where(fresh, batch_mean, m * self.fixed_probs + (1 - m) * batch_mean))
                avg = self.fixed_probs + (batch_mean - batch_mean.detach())
            else:
                avg = torch.where(torch.isnan(self.fixed_probs), batch_mean, self.fixed_probs)
            p = avg.unsqueeze(1).expand(-1, x.shape[0], -1)
            logits = torch.logit(p, eps=1e-6)
        return p, logits

    def masks(self, p: torch.Tensor, logits: torch.Tensor | None, train: bool) -> torch.Tensor:
        """Training: relaxed Bernoulli(p) samples. Relabelling: 1[p >= h] (clip_h) or p itself."""
        if logits is None:
            return p
        if train:  # binary concrete: sigmoid((logit p + logistic noise) / temperature)
            noise = torch.logit(torch.rand(p.shape, generator=self.gen, device=p.device), eps=1e-6)
            return torch.sigmoid((logits + noise) / self.cfg.temperature) * self.real_dims
        return (p >= self.cfg.h).to(p.dtype) if self.cfg.clip_h else p

    def rewards(self, x: torch.Tensor, p: torch.Tensor, logits: torch.Tensor | None, train: bool = False) -> torch.Tensor:
        """r_hat [B, N] = psi_r(c_s * s, c_a * a, i) for every agent."""
        return self.psi_r(self.masks(p, logits, train) * x).squeeze(-1).t().float()

    # ---- RewardAssigner protocol --------------------------------------------------------------------
    @property
    def frozen(self) -> bool:
        return self.cfg.paradigm == "pretrain" and self.pretrain_target > 0 and self.n_updates >= self.pretrain_target

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """`updates_per_step` gradient steps of L_m on this batch (reads state, actions, team_rewards)."""
        if self.cfg.paradigm == "pretrain" and not self.frozen:
            raise RuntimeError("paradigm pretrain: call pretrain() before the first update")
        x = joint_inputs(batch, self.spec)
        target = batch["team_rewards"] if self.truth is None else self.truth.assign(batch)
        if self.frozen:  # keeps reporting its fit on the policy's batches (Table 11) without learning
            with torch.no_grad():
                loss, p = self.loss(x, target)
                rho_sr, rho_ar = self._densities(p)
            return {"causal/loss": loss.item(), "causal/rho_sr": rho_sr, "causal/rho_ar": rho_ar}
        for k in range(self.updates_per_step):
            out = self._step(x, target, stats=k == self.updates_per_step - 1)
        return out

    def loss(self, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """L_m on joint inputs x [B, S + N*A]: (loss, mask probabilities p). `target` is the team
        reward [B] (the agents' rewards must sum to it) or individual rewards [B, N] (ground truth)."""
        with self._autocast():
            p, logits = self.probabilities(x, train=True)
            r_hat = self.rewards(x, p, logits, train=True)
        if target.dim() == 1:
            loss = (target - r_hat.sum(dim=1)).pow(2).mean()
        else:
            loss = (target - r_hat).pow(2).sum(dim=1).mean()
        if logits is not None:  # L1 on the masks: mean over the batch of the sum over agents and dims
            loss = loss + (p.reshape(-1, self.d_in) @ self.l1_weights).sum() / x.shape[0]
        return loss, p

    def _step(self, x: torch.Tensor, target: torch.Tensor, stats: bool = True) -> dict[str, float]:
        loss, p = self.loss(x, target)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.n_updates += 1
        if not stats:
            return {}
        with torch.no_grad():
            rho_sr, rho_ar = self._densities(p)
        return {"causal/loss": loss.item(), "causal/rho_sr": rho_sr, "causal/rho_ar": rho_ar}

    @torch.no_grad()
    def assign(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-agent rewards [B, N] from the joint state and joint action only."""
        x = joint_inputs(batch, self.spec)
        with self._autocast():
            r = self.rewards(x, *self.probabilities(x))
        return r * self.n if self.cfg.times_n_agents else r

    def pretrain(self, sample_batch: Callable[[], dict[str, torch.Tensor]], planned_steps: int | None = None) -> dict[str, float]:
        """paradigm pretrain (Table 11, "causal model first"): causal-only updates on fresh batches
        until `pretrain_updates` (0: planned_steps x updates_per_step, the alternating run's count),
        then frozen. A no-op for paradigm alternate or once done (resume)."""
        if self.cfg.paradigm != "pretrain":
            return {}
        if self.pretrain_target == 0:
            if not planned_steps:
                raise ConfigError("causal.pretrain_updates", "is 0 (match the run's length) but the run's length is unknown",
                                  "set pretrain_updates, or call pretrain(sample_batch, planned_steps=<training steps>)")
            self.pretrain_target = planned_steps * self.updates_per_step
        out: dict[str, float] = {}
        while not self.frozen:
            batch = sample_batch()
            target = batch["team_rewards"] if self.truth is None else self.truth.assign(batch)
            out = self._step(joint_inputs(batch, self.spec), target)
        return out

    def state_dict(self) -> dict:
        return {"nets": self.nets.state_dict(), "opt": self.opt.state_dict(), "fixed_probs": self.fixed_probs.clone(),
                "n_updates": self.n_updates, "pretrain_target": self.pretrain_target, "gen": self.gen.get_state(), "cfg": dataclasses.asdict(self.cfg)}

    def load_state_dict(self, d: dict) -> None:
        self.nets.load_state_dict(d["nets"])
        self.opt.load_state_dict(d["opt"])
        self.fixed_probs.copy_(d["fixed_probs"])
        self.n_updates = int(d["n_updates"])
        self.pretrain_target = int(d["pretrain_target"])
        self.gen.set_state(d["gen"])

    # ---- diagnostics --------------------------------------------------------------------------------
    def _densities(self, p: torch.Tensor) -> tuple[float, float]:
        """Fraction of real mask entries >= h, for state and for action masks (rho_sr, rho_ar)."""
        on = (p >= self.cfg.h).float()
        rho_sr = on[..., : self.d_s].mean().item()
        real_a = self.real_dims[self.d_s:]
        rho_ar = ((on[..., self.d_s:] * real_a).sum() / (real_a.sum() * on.shape[0] * on.shape[1])).item()
        return rho_sr, rho_ar

    @torch.no_grad()
    def mask_densities(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        with self._autocast():
            p, _ = self.probabilities(joint_inputs(batch, self.spec))
        rho_sr, rho_ar = self._densities(p)
        return {"causal/rho_sr": rho_sr, "causal/rho_ar": rho_ar}

    @torch.no_grad()
    def mask_snapshot(self, probe_batch: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
        """Mean mask probabilities over a probe batch: s->r [N, S] and a->r [N, N*A] (Figure 4)."""
        with self._autocast():
            p = self.probabilities(joint_inputs(probe_batch, self.spec))[0].mean(dim=1).float().cpu().numpy()
        return p[:, : self.d_s], p[:, self.d_s:]


# ---- ground truth (Table 9): the only path by which training may see individual rewards ----------

def read_ground_truth(raw_path, team: Dataset) -> np.ndarray:
    """Individual rewards [T, N] of the raw file that `team` was masked from (checked by checksum)."""
    raw = read(raw_path, kind="raw", spec=team.spec)
    if team.attrs.get("source_checksum") != raw.attrs["checksum"]:
        raise DatasetError(raw_path, f"is not the raw file that {team.path} was made from (checksum differs)",
                           "point the ground-truth option at the matching datasets/raw/... file or regenerate both")
    return raw.arrays["individual_rewards"]


class GroundTruthReward:
    """RewardAssigner handing each sample its hidden individual rewards; batches carry `index`,
    the dataset rows they were drawn from."""

    def __init__(self, individual_rewards: np.ndarray, device: torch.device | str):
        self.rewards = torch.as_tensor(np.asarray(individual_rewards, np.float32), device=device)

    def update(self, batch) -> dict[str, float]:
        return {}

    def assign(self, batch) -> torch.Tensor:
        return self.rewards[batch["index"]]

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, d: dict) -> None:
        pass


# ---- how the registry builds them (registry.ASSIGNERS names these) -------------------------------

def causal_model(ctx: RewardContext) -> CausalRewardModel:
    return CausalRewardModel(ctx.spec, ctx.config, ctx.device, ctx.seed)


def ground_truth(ctx: RewardContext) -> GroundTruthReward:
    return GroundTruthReward(read_ground_truth(ctx.raw_dataset, ctx.dataset), ctx.device)


def causal_model_of_ground_truth(ctx: RewardContext) -> CausalRewardModel:
    return CausalRewardModel(ctx.spec, ctx.config, ctx.device, ctx.seed, truth=ground_truth(ctx))


# ---- reward recovery (separate evaluation step, after training) ----------------------------------

def _correlations(pred: np.ndarray, true: np.ndarray, rank: bool) -> dict:
    from scipy.stats import rankdata
    per_agent = []
    for i in range(true.shape[1]):
        a, b = pred[:, i].astype(np.float64), true[:, i].astype(np.float64)
        if rank:
            a, b = rankdata(a), rankdata(b)
        c = np.corrcoef(a, b)[0, 1] if a.std() > 0 and b.std() > 0 else math.nan
        per_agent.append(None if math.isnan(c) else float(c))
    valid = [c for c in per_agent if c is not None]
    return {"per_agent": per_agent, "mean": float(np.mean(valid)) if valid else None}


@torch.no_grad()
def reward_recovery(model, raw: Dataset, batch_size: int = 8192) -> dict:
    """Correlation of r_hat^i with the hidden individual reward r^i over a raw dataset, and, for
    scale, that of the team reward itself (what every agent gets without credit assignment).

    The model sees only the joint state and actions; the individual rewards stay here."""
    if raw.kind != "raw":
        raise DatasetError(raw.path, "is not a raw dataset; reward recovery needs the hidden individual rewards",
                           "pass the datasets/raw/... file")
    pred = []
    for start in range(0, len(raw), batch_size):
        sl = slice(start, start + batch_size)
        batch = {k: torch.as_tensor(raw.arrays[k][sl], device=model.device) for k in ("state", "actions")}
        batch["state"] = batch["state"].float()
        if not model.spec.discrete:
            batch["actions"] = batch["actions"].float()
        pred.append(model.assign(batch).cpu().numpy())
    pred = np.concatenate(pred)
    true = raw.arrays["individual_rewards"]
    team = np.repeat(raw.arrays["team_rewards"][:, None], true.shape[1], axis=1)
    return {"pearson": _correlations(pred, true, rank=False), "spearman": _correlations(pred, true, rank=True),
            "n_samples": int(len(true)),
            "team_reward": {"pearson": _correlations(team, true, rank=False),
                            "spearman": _correlations(team, true, rank=True)}}


def recovery_of_run(run_dir, raw_path) -> dict:
    """reward_recovery of a finished run: its reward assigner rebuilt from the run's config.yaml and
    ckpt.pt, evaluated on the raw dataset its team file was masked from (checked by checksum)."""
    from pathlib import Path

    from .envs import spec_of
    from .runfolder import RunError, read_config
    run_dir = Path(run_dir)
    job = read_config(run_dir)
    entry = ASSIGNERS[job["rewards"]]
    spec = spec_of(job["env"])
    team = read(job["dataset"], kind="team", spec=spec)
    raw = read(raw_path, kind="raw", spec=spec)
    if team.attrs.get("source_checksum") != raw.attrs["checksum"]:
        raise DatasetError(raw_path, f"is not the raw file that {team.path} was made from (checksum differs)",
                           "pass the matching datasets/raw/... file")
    if not entry.mask_snapshots:
        raise MaccabenchError(f"run {run_dir} uses reward assigner {job['rewards']!r}, which does not infer rewards "
                              "from states and actions. Fix: compute reward recovery for MACCA runs only")
    device = torch.device("cpu")
    config = parse_hp(entry.config, job["rewards_hp"], "rewards_hp")
    assigner = make_assigner(job["rewards"], RewardContext(spec, config, device, job["seed"], team, job.get("raw_dataset")))
    ckpt_path = run_dir / "ckpt.pt"
    try:
        state = torch.load(ckpt_path, map_location=device, weights_only=False)["assigner"]
    except Exception as e:   # missing, truncated or corrupted; the run itself may be fine
        raise RunError(ckpt_path, f"cannot be read ({type(e).__name__}: {e}); reward recovery needs the trained model",
                       "rerun the training job, which rewrites it (snakemake ... --forcerun=train)") from None
    assigner.load_state_dict(state)
    return reward_recovery(assigner, raw)
