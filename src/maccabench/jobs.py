"""The typed training job: everything one training run needs, resolved from the configuration by
`config.train_job` and checked once, when it is built. Torch-free. The behaviour and collection
jobs stay plain dicts (`config.behavior_job`, `config.collect_job`); `check_stage_job` checks
the keys of one a rule passes.

A rule passes the job to the CLI as JSON (`to_json`); the CLI parses it back (`from_json`) at its
boundary, and from there on the training loop, the backbone and the reward assigner read typed
fields and their parsed config dataclasses. `to_dict` is the job as the run folder's config.yaml
records it and as the resume digest hashes it: the hyper-parameters exactly as the configuration
wrote them (so a value and its digest never change with parsing).
"""
from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field

from . import hparams, registry
from .errors import ConfigError
from .registry import ASSIGNERS, BACKBONES, SUITES


@dataclass(frozen=True)
class TrainJob:
    env: dict                   # the environment entry (config.env_entry: suite, task, task_args, team, ..., name)
    quality: str
    algo: str
    seed: int                   # training seed
    tier: str
    backbone: str               # a key of registry.BACKBONES
    backbone_hp: dict           # resolved at this quality, as configured
    rewards: str                # a key of registry.ASSIGNERS
    rewards_hp: dict
    dataset_seed: int
    dataset: str                # the team-reward dataset trained on
    raw_dataset: str | None     # the raw dataset, for assigners that read individual rewards only
    behavior: str               # policies.pt holding the frozen opponents
    updates: int
    batch_size: int
    eval_every: int
    eval_episodes: int
    final_eval_episodes: int    # the last evaluation's episodes (the one `final` tables report)
    loop_steps_per_update: int
    table_score: str            # final | best
    # parsed from backbone_hp / rewards_hp when the job is built
    backbone_config: object = field(init=False, repr=False, compare=False)
    rewards_config: object = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        where = f"algorithms.{self.algo}"
        if self.backbone not in BACKBONES:
            raise ConfigError(f"{where}.backbone", f"unknown backbone {self.backbone!r}",
                              f"use one of {', '.join(BACKBONES)}")
        suite = SUITES.get(self.env.get("suite"))   # unknown suites: the env's own checks name them
        problem = suite and BACKBONES[self.backbone].kind_problem(self.backbone, suite.discrete)
        if problem:
            raise ConfigError(f"{where}.backbone", f"cannot train env {self.env.get('name')!r}: {problem}",
                              f"give algorithms.{self.algo}.backbone one of those backbones")
        if self.rewards not in ASSIGNERS:
            raise ConfigError(f"{where}.rewards", f"unknown reward assigner {self.rewards!r}",
                              f"use one of {', '.join(ASSIGNERS)}")
        for key in ("seed", "dataset_seed"):
            if not _is_int(getattr(self, key)) or getattr(self, key) < 0:
                raise ConfigError(key, f"must be a non-negative integer, got {getattr(self, key)!r}",
                                  "use a seed >= 0")
        for key in ("updates", "batch_size", "eval_every", "eval_episodes", "final_eval_episodes",
                    "loop_steps_per_update"):
            if not _is_int(getattr(self, key)) or getattr(self, key) < 1:
                raise ConfigError(key, f"must be a positive integer, got {getattr(self, key)!r}",
                                  f"set `{key}` to a whole number >= 1 in the tier's training settings")
        if self.quality not in hparams.QUALITIES:
            raise ConfigError("quality", f"unknown quality {self.quality!r}", f"use one of {', '.join(hparams.QUALITIES)}")
        if self.table_score not in ("final", "best"):
            raise ConfigError("training.table_score", f"{self.table_score!r} is not allowed", "use final or best")
        assigner = ASSIGNERS[self.rewards]
        object.__setattr__(self, "backbone_config",
                           hparams.parse_hp(BACKBONES[self.backbone].config, self.backbone_hp, "backbone_hp"))
        if assigner.config is None and self.rewards_hp:
            raise ConfigError("rewards_hp", f"reward assigner {self.rewards!r} takes no hyper-parameters", "remove them")
        object.__setattr__(self, "rewards_config", None if assigner.config is None else
                           hparams.parse_hp(assigner.config, self.rewards_hp, "rewards_hp"))

    # ---- the recorded form ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The job as config.yaml records it (keys sorted, as the rules' JSON has always been)."""
        return json.loads(self.to_json())

    def to_json(self) -> str:
        """What a rule passes to the CLI (`--job`)."""
        return json.dumps({f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainJob":
        """A job from its recorded form; ConfigError naming a missing or unknown key."""
        if not isinstance(d, dict):
            raise ConfigError("--job", "is not a JSON object", "pass the job a rule or config.train_job writes")
        names = [f.name for f in dataclasses.fields(cls) if f.init]
        unknown = [k for k in d if k not in names]
        if unknown:
            raise ConfigError(f"--job.{unknown[0]}", "is not a field of a training job",
                              f"remove it; the fields are {', '.join(names)}")
        missing = [k for k in names if k not in d]
        if missing:
            raise ConfigError(f"--job.{missing[0]}", "is missing", "pass the whole job a rule or config.train_job writes")
        return cls(**copy.deepcopy(d))

    @classmethod
    def from_json(cls, text: str) -> "TrainJob":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError("--job", f"is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})",
                              "pass the job as one JSON object, quoted for the shell") from None
        return cls.from_dict(d)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ---- the plain-dict jobs of the behaviour and collection stages -------------------------------

# top-level keys of config.behavior_job and config.collect_job (tests/test_cli_errors.py keeps them equal)
# What `collect` records for the same job. Part of every collection job, so that a change of it
# makes Snakemake (params rerun-trigger) collect existing datasets again instead of keeping
# transitions recorded by an older collector. 2: the last transition of an episode that another
# followed on the same env kept the next episode's first obs/state as next_obs/next_state (fixed).
COLLECTION_FORMAT = 2

BEHAVIOR_COMMON = ("learner", "num_envs", "checkpoint_every_s")   # behavior.* keys that are no learner's section

STAGE_JOB_KEYS = {
    "behavior": ("env", "seed", "behavior", "env_steps", "start_steps", "update_every", "eval_every",
                 "eval_episodes", "reference_episodes"),
    "collect": ("env", "quality", "seed", "transitions", "noise", "num_envs", "collection_format"),
}


def _behavior_keys(section) -> list[str]:
    """The keys a behaviour job's `behavior` needs: the common ones and its learner's hyper-parameters."""
    learner = section.get("learner") if isinstance(section, dict) else None
    if learner is None:
        return list(BEHAVIOR_COMMON)
    if learner not in registry.BEHAVIOR_LEARNERS:
        raise ConfigError("--job.behavior.learner", f"unknown behaviour learner {learner!r}",
                          f"use one of {', '.join(registry.BEHAVIOR_LEARNERS)}")
    return [*BEHAVIOR_COMMON, *hparams.missing_fields(registry.BEHAVIOR_LEARNERS[learner].config, {})]


def check_stage_job(job: dict, stage: str) -> dict:
    """A `behavior` or `collect` job from `--job` with every key its stage reads, or ConfigError
    naming the first missing one: top-level keys, the env entry's (config.env_entry: the
    schema's required keys and `name`) and, for behaviour, the `behavior:` section's."""
    from .config import schema
    props = schema()["properties"]
    fix = f"pass the whole job the `{stage}` rule (config.{stage}_job) writes, or leave --job out and give --config/--tier"
    nested = {"env": [*props["environments"]["additionalProperties"]["required"], "name"]}
    if stage == "behavior":
        nested["behavior"] = _behavior_keys(job.get("behavior"))
    for key in STAGE_JOB_KEYS[stage]:
        if key not in job:
            raise ConfigError(f"--job.{key}", "is missing", fix)
    for key, needed in nested.items():
        if not isinstance(job[key], dict):
            raise ConfigError(f"--job.{key}", f"is a {type(job[key]).__name__}, not a mapping", fix)
        gone = [k for k in needed if k not in job[key]]
        if gone:
            raise ConfigError(f"--job.{key}.{gone[0]}", "is missing", fix)
    return job
