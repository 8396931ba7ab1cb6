"""Typed hyper-parameters: the config dataclasses of every backbone, reward assigner and behaviour
learner (`behavior.<learner>`), and how a config section is checked and parsed into them.
Torch-free, so that validating the configuration (what every Snakemake parse runs) imports neither
torch nor any environment suite.

A dataclass declares names, types, bounds and allowed values; the values themselves live in
config/config.yaml (`training.common`, `backbones:`, `causal:`), one value or one per dataset
quality (`{expert: .., medium: .., medium-replay: .., random: ..}`, paper Table 4).
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass

from .errors import ConfigError, kind_name, range_fix, type_fix

QUALITIES = ("random", "medium", "medium-replay", "expert")


def hp_field(default=dataclasses.MISSING, *, min=None, max=None, choices: tuple | None = None, doc: str = ""):
    """A hyper-parameter field with optional bounds or allowed values (checked when a config is read).
    Fields with a default are keyword-only, so a base class's defaulted field may precede a subclass's
    required ones (every config is built from a mapping, by name)."""
    return dataclasses.field(default=default, kw_only=default is not dataclasses.MISSING,
                             metadata={"min": min, "max": max, "choices": choices, "doc": doc})


def check_value(cls, name: str, value, where: str):
    """The value converted to the field's type, or ConfigError naming `where`."""
    _check_name(cls, name, where)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    want, meta = typing.get_type_hints(cls)[name], fields[name].metadata
    ok = {float: isinstance(value, (int, float)) and not isinstance(value, bool),
          int: isinstance(value, int) and not isinstance(value, bool),
          bool: isinstance(value, bool),
          str: isinstance(value, str)}[want]
    if not ok:
        meaning = f" ({meta['doc']})" if meta.get("doc") else ""
        raise ConfigError(where, f"must be of type {kind_name(want)}, got {value!r}{meaning}", type_fix(want, value))
    value = want(value)
    if meta.get("choices") is not None and value not in meta["choices"]:
        raise ConfigError(where, f"{value!r} is not allowed", f"use one of {', '.join(map(str, meta['choices']))}")
    if want in (int, float):
        low, high = meta.get("min"), meta.get("max")
        if not math.isfinite(value):
            raise ConfigError(where, f"must be finite, got {value!r}", range_fix(want, low, high) if
                              low is not None or high is not None else "write a finite number")
        if low is not None and value < low:
            raise ConfigError(where, f"must be >= {low}, got {value!r}", range_fix(want, low, high))
        if high is not None and value > high:
            raise ConfigError(where, f"must be <= {high}, got {value!r}", range_fix(want, low, high))
    return value


def _check_name(cls, name: str, where: str) -> None:
    fields = [f.name for f in dataclasses.fields(cls)]
    if name not in fields:
        raise ConfigError(where, f"is not a hyper-parameter of {cls.__name__}",
                          f"remove it or use one of {', '.join(sorted(fields))}")


def is_per_quality(value) -> bool:
    """`{expert: 5.0, medium: 0.5, ...}`: one value per dataset quality (paper Table 4)."""
    return isinstance(value, dict) and bool(value) and set(value) <= set(QUALITIES)


def at_quality(mapping: dict, quality: str) -> dict:
    """A section with its per-quality maps resolved to the value of `quality` (checked sections only)."""
    return {k: (v[quality] if is_per_quality(v) else v) for k, v in mapping.items()}


def check_section(cls, mapping: dict, where: str) -> None:
    """Check names and types of a config section (values may be per-quality maps)."""
    for name, value in mapping.items():
        if isinstance(value, dict):
            _check_name(cls, name, f"{where}.{name}")   # a misspelt name, not its first quality
            unknown = [q for q in value if q not in QUALITIES]
            if unknown or not value:
                raise ConfigError(f"{where}.{name}.{unknown[0]}" if unknown else f"{where}.{name}",
                                  "is not a dataset quality" if unknown else "is an empty per-quality map",
                                  f"give one value per quality ({', '.join(QUALITIES)}) or a single value")
            missing = [q for q in QUALITIES if q not in value]
            if missing:
                raise ConfigError(f"{where}.{name}", f"has no value for {', '.join(missing)}",
                                  f"give one value per quality ({', '.join(QUALITIES)}) or a single value")
            for q, v in value.items():
                check_value(cls, name, v, f"{where}.{name}.{q}")
        else:
            check_value(cls, name, value, f"{where}.{name}")


def missing_fields(cls, hp: dict) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.name not in hp and f.default is dataclasses.MISSING]


def parse_hp(cls, hp: dict, where: str):
    """Resolved hyper-parameters (plain values) -> the config dataclass `cls`."""
    out = {}
    for name, value in hp.items():
        out[name] = check_value(cls, name, value, f"{where}.{name}")
    for name in missing_fields(cls, out):
        raise ConfigError(f"{where}.{name}", "is missing", f"add `{name}` to its config section")
    return cls(**out)


# ---- backbones (src/maccabench/algos/) -----------------------------------------------------------

@dataclass(frozen=True)
class BackboneConfig:
    """What every backbone takes (`training.common` in the config)."""
    hidden: int = hp_field(min=1, doc="width of the actor and critic MLPs (and MA-ICQ's mixer; OMAR's MPE networks: 64)")
    gamma: float = hp_field(min=0, max=1, doc="discount")
    actor_lr: float = hp_field(min=0, doc="Adam learning rate of the actors")
    critic_lr: float = hp_field(min=0, doc="Adam learning rate of the critics (and MA-ICQ's mixer)")
    tau: float = hp_field(min=0, max=1, doc="soft target-network update rate")
    grad_clip: float = hp_field(min=0, doc="per-agent gradient-norm clip (OMAR: 0.5; MA-ICQ's mixer on its own)")
    input_norm: bool = hp_field(doc="BatchNorm1d on the input of every actor and critic (OMAR's MPE networks)")
    actor_last_init: float = hp_field(min=0, doc="actors' last-layer weights ~ U[-v, v] (OMAR: 3e-3); 0 = default init")
    precision: str = hp_field("fp32", choices=("fp32", "bf16"),
                              doc="arithmetic of the update's forward and backward passes: bf16 = autocast of the "
                                  "matrix products (weights, optimiser and losses' reductions stay fp32)")


# One config per backbone name serves its continuous and its discrete implementation (registry.
# BackboneEntry); the options one kind does not use are marked (docs/discrete.md).
@dataclass(frozen=True)
class ICQLConfig(BackboneConfig):
    cql_alpha: float = hp_field(min=0, doc="CQL penalty weight (paper Table 4, per quality)")
    cql_samples: int = hp_field(min=1, doc="uniform random actions per state in the CQL log-sum-exp "
                                "(continuous; discrete: exact over the available actions)")
    actor_l2: float = hp_field(min=0, doc="weight of mean(pi(o)^2) in the actor loss (OMAR: 1e-3; continuous only)")


@dataclass(frozen=True)
class OMARConfig(ICQLConfig):
    omar_tau: float = hp_field(min=0, max=1, doc="weight of the rectification term (Table 4, per quality)")
    omar_iters: int = hp_field(min=1, doc="iterations of the zeroth-order optimiser (MPE: 3; continuous only, "
                                 "discrete: an exact argmax)")
    omar_samples: int = hp_field(min=1, doc="actions sampled per iteration (MPE: 10; continuous only)")
    omar_mu: float = hp_field(doc="initial mean of the sampling distribution (0; continuous only)")
    omar_sigma: float = hp_field(min=0, doc="initial standard deviation (2.0; continuous only)")


@dataclass(frozen=True)
class MAICQConfig(BackboneConfig):
    mixer: bool = hp_field(doc="mix per-agent utilities into Q_tot (team reward, MA-ICQ); false for per-agent rewards")
    critic_temperature: float = hp_field(min=1e-6, doc="softmax temperature of the critic weights, in batch stds")
    actor_temperature: float = hp_field(min=1e-6, doc="softmax temperature of the advantage weights, in batch stds")
    expectile: float = hp_field(min=0, max=1, doc="tau of eq. 9's expectile loss; 0.5 = squared TD error")


def maicq_rewards_problem(cfg: MAICQConfig, shared: bool) -> str | None:
    """What is wrong with pairing MA-ICQ's hyper-parameters with a reward assigner, or None."""
    if cfg.mixer and not shared:
        return ("a mixer regresses Q_tot on the team reward, so per-agent rewards (e.g. MACCA's) "
                "would be summed back and their credit assignment lost; set `mixer: false`")
    return None


# ---- credit-assignment backbones on discrete actions (algos/qmix_cql.py, shaq.py, sqddpg.py) ------
# `critic_lr` is the rate of the per-agent Q-networks (or SQDDPG's critic) and of QMIX's mixer;
# the Q-learners (QMIX-CQL, SHAQ) have no actor and leave `actor_lr` and `actor_last_init` unused.

@dataclass(frozen=True)
class QMIXCQLConfig(BackboneConfig):
    mixer_embed: int = hp_field(min=1, doc="width of QMIX's mixing layer (mixing_embed_dim, 32)")
    hypernet_embed: int = hp_field(min=1, doc="width of QMIX's hypernetworks (64)")
    double_q: bool = hp_field(doc="greedy next actions by the online Q_i, valued by the target Q_i (pymarl's double_q)")
    cql_alpha: float = hp_field(min=0, doc="weight of the conservative term on Q_tot (CFCQL's MACQL: 50)")
    cql_samples: int = hp_field(min=1, doc="joint actions sampled uniformly from the available ones per state (100)")


@dataclass(frozen=True)
class SHAQConfig(BackboneConfig):
    mixer_embed: int = hp_field(min=1, doc="width of the monotone network estimating alpha_i (32)")
    hypernet_embed: int = hp_field(min=1, doc="width of its hypernetworks (64)")
    double_q: bool = hp_field(doc="greedy next actions by the online Q_i, valued by the target Q_i (SHAQ's code: true)")
    coalition_samples: int = hp_field(min=1, doc="random orderings per state that estimate alpha_i (sample_size, 10)")
    mixer_lr: float = hp_field(min=0, doc="Adam learning rate of the alpha network (SHAQ's 'LR for alpha')")
    cql_alpha: float = hp_field(min=0, doc="weight of each agent's CQL term over its available actions "
                                "(0: SHAQ; SHAQ-CQL: 0.05)")


@dataclass(frozen=True)
class SQDDPGConfig(BackboneConfig):
    coalition_samples: int = hp_field(min=1, doc="random orderings per state in the Shapley Q-value estimate")
    relax_temperature: float = hp_field(min=1e-3, doc="temperature of the actors' softmax actions into the critic")


def shared_rewards_problem(cfg, shared: bool) -> str | None:
    """Value decompositions regress one joint value on one team reward: per-agent rewards are not theirs."""
    if not shared:
        return ("it learns its own credit assignment from the team reward; give it a shared reward "
                "(rewards: team)")
    return None


# ---- reward assigners (src/maccabench/rewards.py, causal.py) -------------------------------------

@dataclass(frozen=True)
class CausalConfig:
    """MACCA's causal reward model (src/maccabench/causal.py). Its values live in one place, the
    `causal:` section of config/config.yaml (per quality there, paper Table 4 and appendix H);
    `fixed_momentum`, a detail the config does not set, and `times_n_agents`, off but in the
    reward-scale control (`algorithms.*-xn`), have their values here."""
    graph: str = hp_field(choices=("dynamic", "fixed", "full"), doc="dynamic | fixed | full (Table 10)")
    clip_h: bool = hp_field(doc="relabel with 1[p >= h]; false: with the probabilities p (Table 10)")
    h: float = hp_field(min=0, max=1, doc="mask threshold (Table 4; Table 7 sweeps it)")
    lambda1: float = hp_field(min=0, doc="L1 weight of the state->reward masks (Table 4; Table 8)")
    lambda2: float = hp_field(min=0, doc="L1 weight of the action->reward masks (Table 4; Table 6)")
    lr: float = hp_field(min=0, doc="Adam learning rate of psi_g and psi_r (appendix H.3)")
    hidden: int = hp_field(min=1, doc="width of psi_r and psi_g (appendix H.2)")
    layers: int = hp_field(min=1, doc="hidden layers of psi_r and psi_g (appendix H.2)")
    updates_per_step: int = hp_field(min=0, doc="causal updates per training step; 0 = one per agent (Algorithm 1)")
    paradigm: str = hp_field(choices=("alternate", "pretrain"),
                             doc="alternate (Algorithm 1, TCPA) | pretrain (causal model first, TCB)")
    pretrain_updates: int = hp_field(min=0, doc="causal-only updates before the policy starts (paradigm: pretrain); "
                                     "0 = as many as the alternating run makes (its training steps x updates_per_step)")
    precision: str = hp_field(choices=("fp32", "bf16"), doc="fp32 | bf16 (autocast of the matrix products)")
    temperature: float = hp_field(min=1e-3, doc="of the relaxed Bernoulli mask samples used in training")
    fixed_momentum: float = hp_field(0.99, min=0, max=1, doc="running-average momentum of the fixed graph")
    times_n_agents: bool = hp_field(False, doc="relabel with N times the per-agent rewards (they then sum to N R, "
                                    "the team reward's scale per agent): the reward-scale control; the model fits R as ever")


# ---- behaviour learners (src/maccabench/behavior/, `behavior.<learner>` in the config) ----------

@dataclass(frozen=True)
class MATD3Config:
    """MATD3, the continuous behaviour learner (behavior/matd3.py)."""
    hidden: int = hp_field(min=1, doc="width of actor and critic MLPs (OMAR's MPE networks: 64)")
    actor_lr: float = hp_field(min=0, doc="Adam learning rate of the actors")
    critic_lr: float = hp_field(min=0, doc="Adam learning rate of the critics")
    gamma: float = hp_field(min=0, max=1, doc="discount")
    tau: float = hp_field(min=0, max=1, doc="soft target update rate")
    batch_size: int = hp_field(min=1, doc="replay samples per update")
    exploration_noise: float = hp_field(min=0, doc="Gaussian std on actions in [-1, 1] while learning")
    policy_noise: float = hp_field(min=0, doc="target policy smoothing (TD3)")
    noise_clip: float = hp_field(min=0, doc="clip of the target policy noise")
    policy_delay: int = hp_field(min=1, doc="actor and target updates every this many critic updates")


@dataclass(frozen=True)
class IPPOConfig:
    """IPPO with one feed-forward actor and critic shared by every agent, a softmax over the available
    actions only (behavior/ippo.py). Its rollouts set the update schedule, so the tiers'
    behavior_start_steps and behavior_update_every (MATD3's) do not apply."""
    hidden: int = hp_field(min=1, doc="width of the shared actor and critic MLPs (two hidden layers)")
    lr: float = hp_field(min=0, doc="Adam learning rate of actor and critic")
    gamma: float = hp_field(min=0, max=1, doc="discount")
    gae_lambda: float = hp_field(min=0, max=1, doc="GAE lambda")
    rollout_steps: int = hp_field(min=1, doc="steps of every env per update (one update = rollout_steps x num_envs env steps)")
    epochs: int = hp_field(min=1, doc="passes over each rollout")
    minibatches: int = hp_field(min=1, doc="minibatches per pass")
    clip_eps: float = hp_field(min=0, doc="PPO's ratio clip")
    ent_coef: float = hp_field(min=0, doc="entropy bonus weight")
    vf_coef: float = hp_field(min=0, doc="value loss weight")
    max_grad_norm: float = hp_field(min=0, doc="gradient-norm clip")
    anneal_lr: bool = hp_field(doc="decay the learning rate linearly to 0 over the run's env steps (steadier final policy)")
