"""Loading, validating and slicing the pipeline configuration.

The Snakefile and the CLI share this module, so a config that Snakemake accepts is exactly one the
CLI accepts. Validation happens in two layers: the JSON schema (types, required fields, enums),
reported with the field's dotted path, then cross-field checks (tier names existing envs, a team
naming agents the task really has).
"""
from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from . import layout
from .errors import ConfigError

QUALITIES = ("random", "medium", "medium-replay", "expert")


def schema() -> dict:
    with resources.files("maccabench").joinpath("schemas/config.schema.yaml").open() as f:
        return yaml.safe_load(f)


def load(path: str | Path, overrides: dict | None = None) -> dict:
    if not Path(path).is_file():
        raise ConfigError("--config", f"{path} does not exist", "run from the repository root or pass --config <file>")
    with open(path) as f:
        cfg = yaml.safe_load(f)
    cfg.update(overrides or {})
    return check(cfg)


def _schema_error(err: jsonschema.ValidationError) -> ConfigError:
    field = ".".join(str(p) for p in err.absolute_path) or "<top level>"
    sub = err.schema if isinstance(err.schema, dict) else {}
    if err.validator == "required":
        missing = err.message.split("'")[1]
        where = missing if field == "<top level>" else f"{field}.{missing}"
        return ConfigError(where, "is missing",
                           f"add `{missing}` (see workflow/schemas/config.schema.yaml)")
    if err.validator == "additionalProperties":
        allowed = sorted(sub.get("properties", {}))
        extra = err.message.split("'")[1]
        where = f"{field}.{extra}" if field != "<top level>" else extra
        hint = f"allowed here: {', '.join(allowed)}" if allowed else "remove it"
        return ConfigError(where, "is not a known field (misspelt?)", f"correct or remove it; {hint}")
    if err.validator == "enum":
        return ConfigError(field, f"{err.instance!r} is not allowed",
                           f"use one of {', '.join(map(str, err.validator_value))}")
    if err.validator == "type":
        return ConfigError(field, f"must be of type {err.validator_value}, got {err.instance!r}",
                           f"write a {err.validator_value}" + (f" ({sub['description']})" if "description" in sub else ""))
    return ConfigError(field, err.message, sub.get("description", "see workflow/schemas/config.schema.yaml"))


def check(cfg: dict) -> dict:
    """Validate a config; returns it unchanged or raises ConfigError naming the field and the fix."""
    if not isinstance(cfg, dict):
        raise ConfigError("<top level>", "the config is not a mapping", "check the YAML file")
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(cfg), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        raise _schema_error(errors[0])

    from .envs import SUITES  # local import: envs pull in heavy packages

    for name, env in cfg["environments"].items():
        if env["suite"] not in SUITES:
            raise ConfigError(f"environments.{name}.suite", f"unknown suite {env['suite']!r}",
                              f"use one of {', '.join(sorted(SUITES))} or add an adapter in src/maccabench/envs")
        suite = SUITES[env["suite"]]
        tasks = suite.tasks()
        if env["task"] not in tasks:
            raise ConfigError(f"environments.{name}.task", f"unknown task {env['task']!r} in suite {env['suite']}",
                              f"use one of {', '.join(sorted(tasks))}")
        agents = suite.agent_names(env["task"], env.get("task_args", {}))
        bad = [a for a in env["team"] if a not in agents]
        if bad:
            raise ConfigError(f"environments.{name}.team", f"names agents the task does not have: {', '.join(bad)}",
                              f"choose from {', '.join(agents)}")
        others = [a for a in agents if a not in env["team"]]
        if others and env["others"] == "none":
            raise ConfigError(f"environments.{name}.others", f"the task also has {', '.join(others)}, which need a policy",
                              "set `others: frozen` or add them to the team")
    for tier_name, tier in cfg["tiers"].items():
        for i, env in enumerate(tier["envs"]):
            if env not in cfg["environments"]:
                raise ConfigError(f"tiers.{tier_name}.envs[{i}]", f"unknown env {env!r}",
                                  f"use one of {', '.join(cfg['environments'])} or add it under `environments`")
    _check_training(cfg)
    return cfg


# ---- slices of the config that one job needs (also what Snakemake passes as params) ----------

def results_dir(cfg: dict) -> str:
    return cfg["results"].format(tier=cfg["tier"])


def tier(cfg: dict) -> dict:
    return cfg["tiers"][cfg["tier"]]


def env_entry(cfg: dict, env: str) -> dict:
    if env not in cfg["environments"]:
        raise ConfigError("env", f"unknown env {env!r}", f"use one of {', '.join(cfg['environments'])}")
    entry = copy.deepcopy(cfg["environments"][env])
    entry.setdefault("task_args", {})
    entry["name"] = env
    return entry


def behavior_job(cfg: dict, env: str, seed: int) -> dict:
    t = tier(cfg)
    return {
        "env": env_entry(cfg, env),
        "seed": int(seed),
        "behavior": dict(cfg["behavior"]),
        "env_steps": t["behavior_env_steps"],
        "start_steps": t["behavior_start_steps"],
        "update_every": t["behavior_update_every"],
        "eval_every": t["behavior_eval_every"],
        "eval_episodes": t["behavior_eval_episodes"],
        "reference_episodes": t["reference_episodes"],
    }


def collect_job(cfg: dict, env: str, quality: str, seed: int) -> dict:
    if quality not in QUALITIES:
        raise ConfigError("quality", f"unknown quality {quality!r}", f"use one of {', '.join(QUALITIES)}")
    t = tier(cfg)
    return {
        "env": env_entry(cfg, env),
        "quality": quality,
        "seed": int(seed),
        "transitions": t["dataset_transitions"],
        "noise": cfg["collection"]["noise"],
        "num_envs": cfg["behavior"]["num_envs"],
    }


# ---- offline training: algorithms, hyper-parameters per quality, the job of one run -------------

def _check_training(cfg: dict) -> None:
    """Backbone names and hyper-parameter names/types (per quality), algorithm entries and the
    tiers' training selections; errors name the config field."""
    from .algos import ALGOS   # local imports: torch
    from .algos.common import check_section, missing_fields
    from .rewards import ASSIGNERS

    for name, section in cfg["backbones"].items():
        if name not in ALGOS:
            raise ConfigError(f"backbones.{name}", "is not a known backbone", f"use one of {', '.join(ALGOS)}")
        check_section(ALGOS[name].Config, section, f"backbones.{name}")
        check_section(ALGOS[name].Config, cfg["training"]["common"], "training.common")
    for algo, entry in cfg["algorithms"].items():
        where = f"algorithms.{algo}"
        if entry["backbone"] not in ALGOS or entry["backbone"] not in cfg["backbones"]:
            raise ConfigError(f"{where}.backbone", f"unknown backbone {entry['backbone']!r}",
                              f"use one of {', '.join(b for b in ALGOS if b in cfg['backbones'])}")
        if entry["rewards"] not in ASSIGNERS:
            raise ConfigError(f"{where}.rewards", f"unknown reward assigner {entry['rewards']!r}",
                              f"use one of {', '.join(ASSIGNERS)} (src/maccabench/rewards.py)")
        cls = ALGOS[entry["backbone"]]
        check_section(cls.Config, entry.get("options", {}), f"{where}.options")
        missing = missing_fields(cls.Config, backbone_hp(cfg, algo, QUALITIES[0]))
        if missing:
            raise ConfigError(f"backbones.{entry['backbone']}.{missing[0]}", "is missing",
                              f"add `{missing[0]}` (see the Config dataclass of src/maccabench/algos/{entry['backbone']}.py)")
        assigner = ASSIGNERS[entry["rewards"]]
        if assigner.config_class is not None:   # e.g. the causal model's lambda1/lambda2/h/graph/...
            from .algos.common import parse_hp
            for q in QUALITIES:
                parse_hp(assigner.config_class(), reward_hp(cfg, algo, q), f"{where}.reward_options")
        if hasattr(cls, "check_rewards"):
            from .algos.common import parse_hp
            for q in QUALITIES:
                problem = cls.check_rewards(parse_hp(cls.Config, backbone_hp(cfg, algo, q), where),
                                            ASSIGNERS[entry["rewards"]].shared)
                if problem:
                    raise ConfigError(where, f"backbone {entry['backbone']} with rewards {entry['rewards']!r}: {problem}",
                                      f"set it under `{where}.options`")
    for tier_name, t in cfg["tiers"].items():
        for i, algo in enumerate(t["algos"]):
            if algo not in cfg["algorithms"]:
                raise ConfigError(f"tiers.{tier_name}.algos[{i}]", f"unknown algorithm {algo!r}",
                                  f"use one of {', '.join(cfg['algorithms'])} or add it under `algorithms`")
        if "train_dataset_seed" in t and t["train_dataset_seed"] not in t["dataset_seeds"]:
            raise ConfigError(f"tiers.{tier_name}.train_dataset_seed", "is not one of the tier's dataset_seeds",
                              f"use one of {t['dataset_seeds']}")
        for key in t.get("train_updates_overrides", {}):
            if key.split("/")[0] not in cfg["environments"]:
                raise ConfigError(f"tiers.{tier_name}.train_updates_overrides.{key}", "names an unknown env",
                                  f"use <env>/<quality> with env one of {', '.join(cfg['environments'])}")


def _per_quality(mapping: dict, quality: str) -> dict:
    """Hyper-parameters with per-quality maps ({expert: .., medium: .., ...}) resolved."""
    from .algos.common import is_per_quality
    return {k: (v[quality] if is_per_quality(v) else v) for k, v in mapping.items()}


def algorithm(cfg: dict, algo: str) -> dict:
    if algo not in cfg["algorithms"]:
        raise ConfigError("algo", f"unknown algorithm {algo!r}",
                          f"use one of {', '.join(cfg['algorithms'])} or add it under `algorithms` in the config")
    return cfg["algorithms"][algo]


def backbone_hp(cfg: dict, algo: str, quality: str) -> dict:
    """training.common < backbones.<backbone> < algorithms.<algo>.options, at this quality."""
    a = algorithm(cfg, algo)
    return _per_quality({**cfg["training"]["common"], **cfg["backbones"].get(a["backbone"], {}),
                         **a.get("options", {})}, quality)


def reward_hp(cfg: dict, algo: str, quality: str) -> dict:
    """The assigner's config section (e.g. `causal:`) < the tier's causal_precision <
    algorithms.<algo>.reward_options, at this quality."""
    from .rewards import ASSIGNERS
    a = algorithm(cfg, algo)
    section = ASSIGNERS[a["rewards"]].config_section
    base = copy.deepcopy(cfg.get(section) or {}) if section else {}
    if section == "causal" and "causal_precision" in tier(cfg):
        base["precision"] = tier(cfg)["causal_precision"]
    return _per_quality({**base, **a.get("reward_options", {})}, quality)


def run_dir(cfg: dict, env: str, quality: str, algo: str, seed: int) -> str:
    return layout.run_dir(results_dir(cfg), env, quality, algo, int(seed))


def train_job(cfg: dict, env: str, quality: str, algo: str, seed: int) -> dict:
    """Everything one training run needs, resolved: what config.yaml of the run folder records."""
    from .rewards import ASSIGNERS
    if quality not in QUALITIES:
        raise ConfigError("quality", f"unknown quality {quality!r}", f"use one of {', '.join(QUALITIES)}")
    a, t, root = algorithm(cfg, algo), tier(cfg), results_dir(cfg)
    data_seed = t.get("train_dataset_seed", t["dataset_seeds"][0])
    reads_raw = a.get("raw_dataset", ASSIGNERS[a["rewards"]].reads_raw)
    return {
        "env": env_entry(cfg, env),
        "quality": quality,
        "algo": algo,
        "seed": int(seed),
        "tier": cfg["tier"],
        "backbone": a["backbone"],
        "backbone_hp": backbone_hp(cfg, algo, quality),
        "rewards": a["rewards"],
        "rewards_hp": reward_hp(cfg, algo, quality),
        "dataset_seed": data_seed,
        "dataset": layout.dataset(root, "team", env, quality, data_seed),
        "raw_dataset": layout.dataset(root, "raw", env, quality, data_seed) if reads_raw else None,
        "behavior": layout.behavior_files(root, env, data_seed)["policies"],   # the frozen opponents
        "updates": t.get("train_updates_overrides", {}).get(f"{env}/{quality}", t["train_updates"]),
        "batch_size": t["train_batch_size"],
        "eval_every": t["eval_every"],
        "eval_episodes": t["eval_episodes"],
        "loop_steps_per_update": cfg["training"]["loop_steps_per_update"],
        "table_score": cfg["training"]["table_score"],
    }
