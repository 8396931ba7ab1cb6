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

from .errors import ConfigError

QUALITIES = ("random", "medium", "medium-replay", "expert")


def schema() -> dict:
    with resources.files("maccabench").joinpath("schemas/config.schema.yaml").open() as f:
        return yaml.safe_load(f)


def load(path: str | Path, overrides: dict | None = None) -> dict:
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
