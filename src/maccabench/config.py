"""Loading, validating and slicing the pipeline configuration.

The Snakefile and the CLI share this module, so a config that Snakemake accepts is exactly one the
CLI accepts. Validation happens in two layers: the JSON schema (types, required fields, enums),
reported with the field's dotted path, then cross-field checks (tier names existing envs, a team
naming agents the task really has, hyper-parameters parsed into their dataclasses, tables naming
real algorithms). Torch-free, and no suite is imported: the workflow runs this on every parse.
"""
from __future__ import annotations

import copy
import re
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from . import layout
from .errors import ConfigError, range_fix, type_fix
from .yamlfile import read_strict
from .hparams import QUALITIES, BackboneConfig, at_quality, check_section, missing_fields, parse_hp
from .jobs import BEHAVIOR_COMMON, COLLECTION_FORMAT, TrainJob
from .registry import ASSIGNERS, BACKBONES, BEHAVIOR_LEARNERS, SUITES, action_kind


def schema() -> dict:
    with resources.files("maccabench").joinpath("schemas/config.schema.yaml").open() as f:
        return yaml.safe_load(f)


def load(path: str | Path, overrides: dict | None = None) -> dict:
    if not Path(path).is_file():
        raise ConfigError("--config", f"{path} does not exist", "run from the repository root or pass --config <file>")
    cfg = read_strict(path)   # duplicate keys and syntax errors: named with file, line and column
    if isinstance(cfg, dict):
        cfg.update(overrides or {})
    return check(cfg)


def _schema_error(err: jsonschema.ValidationError) -> ConfigError:
    """The first schema violation as a ConfigError: the field's dotted path and what to write there
    (a field's description says what it means, never how to fix it, so it is context at most)."""
    field = ".".join(str(p) for p in err.absolute_path) or "<top level>"
    sub = err.schema if isinstance(err.schema, dict) else {}
    value, rule = err.instance, err.validator_value
    if err.validator in ("anyOf", "oneOf") and err.context:
        # "not valid under any of the given schemas" names nothing: report the failure inside the
        # alternative meant for this kind of value (e.g. a misspelt key of a per-quality map)
        meant = [e for e in err.context if e.validator != "type"] or list(err.context)
        return _schema_error(max(meant, key=lambda e: len(e.absolute_path)))
    if "propertyNames" in err.schema_path:   # a key of `field` is badly named: name the key itself
        key = f"{field}.{value}" if field != "<top level>" else str(value)
        if err.validator == "pattern":
            fix = f"rename it: {sub['description']}" if "description" in sub else f"rename it to match {rule}"
            suggestion = str(value).lower()
            if suggestion != value and re.fullmatch(rule, suggestion):
                fix += f", e.g. `{suggestion}`"
            return ConfigError(key, "is not a valid name here", fix)
        return ConfigError(key, f"is not a valid name here ({err.message})", "rename it")
    if err.validator == "required":
        missing = err.message.split("'")[1]
        where = missing if field == "<top level>" else f"{field}.{missing}"
        meaning = sub.get("properties", {}).get(missing, {}).get("description")
        return ConfigError(where, "is missing" + (f" ({meaning})" if meaning else ""),
                           f"add `{missing}:`" + ("" if field == "<top level>" else f" under `{field}`")
                           + " (config/config.yaml has every field with a value)")
    if err.validator == "additionalProperties":
        allowed = sorted(sub.get("properties", {}))
        extra = err.message.split("'")[1]
        where = f"{field}.{extra}" if field != "<top level>" else extra
        hint = f"allowed here: {', '.join(allowed)}" if allowed else "remove it"
        return ConfigError(where, "is not a known field (misspelt?)", f"correct or remove it; {hint}")
    if err.validator == "enum":
        return ConfigError(field, f"{value!r} is not allowed", f"use one of {', '.join(map(str, rule))}")
    if err.validator == "const":
        return ConfigError(field, f"{value!r} is not allowed", f"write {rule!r}")
    if err.validator == "type":
        return ConfigError(field, f"must be of type {' or '.join(rule) if isinstance(rule, list) else rule}, got {value!r}", type_fix(rule, value))
    if err.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        low = sub.get("minimum", sub.get("exclusiveMinimum"))
        high = sub.get("maximum", sub.get("exclusiveMaximum"))
        return ConfigError(field, err.message, range_fix(sub.get("type", "number"), low, high,
                                                         low_open="exclusiveMinimum" in sub,
                                                         high_open="exclusiveMaximum" in sub))
    meaning = f" ({sub['description']})" if "description" in sub else ""
    if err.validator in ("minItems", "minProperties"):
        what = "item" if err.validator == "minItems" else "entry"
        return ConfigError(field, f"needs at least {rule} {what}{'s' if rule > 1 else ''}, got {value!r}",
                           f"give at least {rule} {what}{'' if rule == 1 else 's'}{meaning}")
    if err.validator in ("maxItems", "maxProperties"):
        what = "item" if err.validator == "maxItems" else "entry"
        return ConfigError(field, f"has more than {rule} {what}s: {value!r}", f"give at most {rule}{meaning}")
    if err.validator == "uniqueItems":
        repeated = list(dict.fromkeys(v for i, v in enumerate(value) if v in value[:i]))
        return ConfigError(field, f"repeats {', '.join(map(repr, repeated))}: {value!r}",
                           f"remove the repeated {', '.join(map(repr, repeated))}; each may appear once")
    if err.validator == "pattern":
        fix = f"write {sub['description']}" if "description" in sub else f"write text matching {rule}"
        return ConfigError(field, f"{value!r} is not allowed", fix)
    return ConfigError(field, err.message,
                       f"change it to satisfy `{err.validator}: {rule}` of workflow/schemas/config.schema.yaml")


def check(cfg: dict) -> dict:
    """Validate a config; returns it unchanged or raises ConfigError naming the field and the fix.

    The one validation path, run before any job (by the CLI and on every Snakemake parse): the
    schema, then every section once: environments against their suite's description, tiers,
    hyper-parameters parsed into their dataclasses at every quality, algorithms and tables."""
    if not isinstance(cfg, dict):
        raise ConfigError("<top level>", "the config is not a mapping", "check the YAML file")
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(cfg), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        raise _schema_error(errors[0])
    check_tier_name(cfg)
    _check_results(cfg)
    _check_environments(cfg)
    _check_behavior(cfg)
    for tier_name, t in cfg["tiers"].items():
        for i, env in enumerate(t["envs"]):
            if env not in cfg["environments"]:
                raise ConfigError(f"tiers.{tier_name}.envs[{i}]", f"unknown env {env!r}",
                                  f"use one of {', '.join(cfg['environments'])} or add it under `environments`")
            _check_backbone_kinds(cfg, tier_name, env)
    _check_installation(cfg)
    _check_training(cfg)
    if "tables" in cfg:
        _check_tables(cfg)
    return cfg


def _check_backbone_kinds(cfg: dict, tier_name: str, env: str) -> None:
    """Every algorithm of the tier has a backbone implementation for the env's kind of actions
    (registry.BackboneEntry.kind_problem: one name resolves to the continuous or the discrete one)."""
    suite = cfg["environments"][env]["suite"]
    for j, algo in enumerate(cfg["tiers"][tier_name]["algos"]):
        backbone = cfg["algorithms"].get(algo, {}).get("backbone")
        if backbone not in BACKBONES:
            continue    # an unknown algorithm or backbone: _check_training names it
        problem = BACKBONES[backbone].kind_problem(backbone, SUITES[suite].discrete)
        if problem:
            raise ConfigError(f"tiers.{tier_name}.algos[{j}]", f"algorithm {algo!r} cannot train env {env!r} "
                              f"(suite {suite}): {problem}",
                              f"remove {algo!r} or {env!r} from tiers.{tier_name}, or give "
                              f"algorithms.{algo}.backbone one of those backbones")


def _check_installation(cfg: dict) -> None:
    """Every env of the chosen tier can run on this machine (registry.SuiteEntry.installation:
    suites whose software pip cannot install, such as StarCraft II). Only the chosen tier: an entry
    that no tier here runs may name a suite this machine lacks."""
    tier = cfg["tier"]
    for i, env in enumerate(cfg["tiers"][tier]["envs"]):
        entry = cfg["environments"][env]
        lacking = SUITES[entry["suite"]].installation_problem(entry["task"])
        if lacking:
            problem, install = lacking
            raise ConfigError(f"tiers.{tier}.envs[{i}]", f"env {env!r} (suite {entry['suite']}) cannot run here: {problem}",
                              f"{install}; or remove {env!r} from tiers.{tier}.envs")


def _check_environments(cfg: dict) -> None:
    """Suite, task, task_args and agent names of every entry, from each suite's description
    (registry.SUITES), without importing any suite."""
    for name, env in cfg["environments"].items():
        where = f"environments.{name}"
        if env["suite"] not in SUITES:
            raise ConfigError(f"{where}.suite", f"unknown suite {env['suite']!r}",
                              f"use one of {', '.join(sorted(SUITES))} or add an adapter in src/maccabench/envs")
        tasks = SUITES[env["suite"]].describe().tasks
        if env["task"] not in tasks:
            raise ConfigError(f"{where}.task", f"unknown task {env['task']!r} in suite {env['suite']}",
                              f"use one of {', '.join(sorted(tasks))}")
        task = tasks[env["task"]]
        task_args = env.get("task_args", {})
        task.check_args(task_args, f"{where}.task_args")
        agents = task.agent_names(task_args)
        bad = [a for a in env["team"] if a not in agents]
        if bad:
            raise ConfigError(f"{where}.team", f"names agents the task does not have: {', '.join(bad)}",
                              f"choose from {', '.join(agents)}")
        others = [a for a in agents if a not in env["team"]]
        if others and env["others"] == "none":
            raise ConfigError(f"{where}.others", f"the task also has {', '.join(others)}, which need a policy",
                              "set `others: frozen` or add them to the team")


# ---- behaviour learning: which learner each env gets, and its hyper-parameters ------------------

def behavior_learner(cfg: dict, env: str) -> tuple[str, str]:
    """(the behaviour learner of `env`, the config field that names it): `behavior.learner.<env>`
    where the env has its own entry, else `behavior.learner.<its suite>`."""
    suite, names = cfg["environments"][env]["suite"], cfg["behavior"]["learner"]
    key = env if env in names else suite
    if key not in names:
        raise ConfigError("behavior.learner", f"names no learner for env {env!r} nor for its suite {suite!r}",
                          f"add `{suite}: <learner>` under `behavior.learner` (learners: {', '.join(BEHAVIOR_LEARNERS)})")
    return names[key], f"behavior.learner.{key}"


def check_learner_kind(learner: str, discrete: bool, field: str, env: str) -> None:
    """ConfigError naming `field` where `learner` does not serve `env`'s action kind."""
    entry = BEHAVIOR_LEARNERS[learner]
    if entry.discrete != discrete:
        fits = [n for n, e in BEHAVIOR_LEARNERS.items() if e.discrete == discrete]
        raise ConfigError(field, f"{learner!r} learns {entry.action_kind} actions, but env {env!r} has "
                                 f"{action_kind(discrete)} ones", f"name a {action_kind(discrete)} learner: {', '.join(fits)}")


def _check_behavior(cfg: dict) -> None:
    """`behavior.learner` names known suites/envs and learners, every learner section parses into its
    config dataclass, and every env's learner exists, has a section and serves its action kind."""
    b = cfg["behavior"]
    for key, learner in b["learner"].items():
        if key not in SUITES and key not in cfg["environments"]:
            raise ConfigError(f"behavior.learner.{key}", "is neither a suite nor an env",
                              f"use a suite ({', '.join(SUITES)}) or an env of `environments`")
        if learner not in BEHAVIOR_LEARNERS:
            raise ConfigError(f"behavior.learner.{key}", f"unknown behaviour learner {learner!r}",
                              f"use one of {', '.join(BEHAVIOR_LEARNERS)}")
    for name, section in b.items():
        if name in BEHAVIOR_COMMON:
            continue
        if name not in BEHAVIOR_LEARNERS:
            raise ConfigError(f"behavior.{name}", "is not a known field nor a behaviour learner (misspelt?)",
                              f"use {', '.join(BEHAVIOR_COMMON)} or a learner's section: {', '.join(BEHAVIOR_LEARNERS)}")
        if not isinstance(section, dict):
            raise ConfigError(f"behavior.{name}", f"must be a mapping of {name}'s hyper-parameters, got {section!r}",
                              "write them as `key: value` lines under it (config/config.yaml has every field)")
        parse_hp(BEHAVIOR_LEARNERS[name].config, section, f"behavior.{name}")
    for env, entry in cfg["environments"].items():
        learner, field = behavior_learner(cfg, env)
        if learner not in b:
            raise ConfigError(f"behavior.{learner}", f"is missing (the hyper-parameters of {learner}, which {field} names)",
                              f"add a `{learner}:` section under `behavior`")
        check_learner_kind(learner, SUITES[entry["suite"]].discrete, field, env)


# ---- slices of the config that one job needs (also what Snakemake passes as params) ----------

def results_dir(cfg: dict) -> str:
    return cfg["results"].format(tier=cfg["tier"])


def tier(cfg: dict) -> dict:
    return cfg["tiers"][cfg["tier"]]


def check_tier_name(cfg: dict) -> None:
    """The chosen `tier` must be one the config defines: tier names come only from `tiers:`."""
    if cfg["tier"] not in cfg["tiers"]:
        raise ConfigError("tier", f"{cfg['tier']!r} is not allowed",
                          f"use one of {', '.join(cfg['tiers'])} (the keys of `tiers`) or add a tier there")


def _check_results(cfg: dict) -> None:
    """`results` may hold `{tier}` and no other placeholder (results_dir formats it)."""
    try:
        results_dir(cfg)
    except (KeyError, IndexError, ValueError) as e:
        problem = f"has the unknown placeholder {{{e.args[0]}}}" if isinstance(e, KeyError) else f"cannot be formatted ({e})"
        raise ConfigError("results", f"{cfg['results']!r} {problem}",
                          "use `{tier}` (the only placeholder, e.g. results/{tier}) or none; write {{ and }} for literal braces") from None


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
        "behavior": _behavior_section(cfg, env),
        "env_steps": t["behavior_env_steps"],
        "start_steps": t["behavior_start_steps"],
        "update_every": t["behavior_update_every"],
        "eval_every": t["behavior_eval_every"],
        "eval_episodes": t["behavior_eval_episodes"],
        "reference_episodes": t["reference_episodes"],
    }


def _behavior_section(cfg: dict, env: str) -> dict:
    """The behaviour job's `behavior`: the learner's name, the common keys and its hyper-parameters."""
    learner, _ = behavior_learner(cfg, env)
    b = cfg["behavior"]
    return {"learner": learner, "num_envs": b["num_envs"], "checkpoint_every_s": b["checkpoint_every_s"],
            **b[learner]}


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
        "collection_format": COLLECTION_FORMAT,
    }


# ---- offline training: algorithms, hyper-parameters per quality, the job of one run -------------

def _check_training(cfg: dict) -> None:
    """Every hyper-parameter section checked where it is written (names, types, bounds, per-quality
    maps complete), then each algorithm's resolved hyper-parameters parsed into its backbone's and
    its assigner's dataclasses at every quality, and the tiers' training selections."""
    check_section(BackboneConfig, cfg["training"]["common"], "training.common")
    for name, section in cfg["backbones"].items():
        if name not in BACKBONES:
            raise ConfigError(f"backbones.{name}", "is not a known backbone", f"use one of {', '.join(BACKBONES)}")
        check_section(BACKBONES[name].config, {k: v for k, v in section.items() if k not in LAYERS}, f"backbones.{name}")
        for suite, values in section.get(BY_SUITE, {}).items():
            if suite not in SUITES:
                raise ConfigError(f"backbones.{name}.{BY_SUITE}.{suite}", "is not a suite",
                                  f"use one of {', '.join(SUITES)} (src/maccabench/registry.py SUITES)")
            check_section(BACKBONES[name].config, values, f"backbones.{name}.{BY_SUITE}.{suite}")
        for env, values in section.get(BY_ENV, {}).items():
            if env not in cfg["environments"]:
                raise ConfigError(f"backbones.{name}.{BY_ENV}.{env}", "is not an env of `environments`",
                                  f"use one of {', '.join(cfg['environments'])}")
            check_section(BACKBONES[name].config, values, f"backbones.{name}.{BY_ENV}.{env}")
    for section in dict.fromkeys(a.config_section for a in ASSIGNERS.values() if a.config_section):
        if section in cfg:
            check_section(_assigner_config(section), cfg[section] or {}, section)
    for algo, entry in cfg["algorithms"].items():
        where = f"algorithms.{algo}"
        if entry["backbone"] not in BACKBONES or entry["backbone"] not in cfg["backbones"]:
            raise ConfigError(f"{where}.backbone", f"unknown backbone {entry['backbone']!r}",
                              f"use one of {', '.join(b for b in BACKBONES if b in cfg['backbones'])}")
        if entry["rewards"] not in ASSIGNERS:
            raise ConfigError(f"{where}.rewards", f"unknown reward assigner {entry['rewards']!r}",
                              f"use one of {', '.join(ASSIGNERS)} (src/maccabench/registry.py)")
        backbone, assigner = BACKBONES[entry["backbone"]], ASSIGNERS[entry["rewards"]]
        check_section(backbone.config, entry.get("options", {}), f"{where}.options")
        if assigner.config is None and entry.get("reward_options"):
            raise ConfigError(f"{where}.reward_options", f"reward assigner {entry['rewards']!r} takes no options",
                              "remove `reward_options` or use an assigner that has them (e.g. causal)")
        if assigner.config is not None:
            check_section(assigner.config, entry.get("reward_options", {}), f"{where}.reward_options")
        for q, env in ((q, env) for q in QUALITIES for env in _layered_envs(cfg, cfg["backbones"][entry["backbone"]])):
            hp = backbone_hp(cfg, algo, q, env)
            missing = missing_fields(backbone.config, hp)
            if missing:
                raise ConfigError(f"backbones.{entry['backbone']}.{missing[0]}", "is missing",
                                  f"add `{missing[0]}` (see {backbone.config.__name__} in src/maccabench/hparams.py)")
            if assigner.config is not None:
                missing = missing_fields(assigner.config, reward_hp(cfg, algo, q))
                if missing:
                    raise ConfigError(f"{assigner.config_section}.{missing[0]}", "is missing",
                                      f"add `{missing[0]}` (see {assigner.config.__name__} in src/maccabench/hparams.py)")
                reward_config(cfg, algo, q)
            parsed = backbone_config(cfg, algo, q, env)
            problem = backbone.check_rewards and backbone.check_rewards(parsed, assigner.shared)
            if problem:
                raise ConfigError(where, f"backbone {entry['backbone']} with rewards {entry['rewards']!r}: {problem}",
                                  f"set it under `{where}.options`")
    for tier_name, t in cfg["tiers"].items():
        for i, algo in enumerate(t["algos"]):
            if algo not in cfg["algorithms"]:
                raise ConfigError(f"tiers.{tier_name}.algos[{i}]", f"unknown algorithm {algo!r}",
                                  f"use one of {', '.join(cfg['algorithms'])} or add it under `algorithms`")
        for key in t.get("train_updates_overrides", {}):
            if key.split("/")[0] not in cfg["environments"]:
                raise ConfigError(f"tiers.{tier_name}.train_updates_overrides.{key}", "names an unknown env",
                                  f"use <env>/<quality> with env one of {', '.join(cfg['environments'])}")


def _assigner_config(section: str) -> type:
    """The dataclass of the assigners whose values live in config section `section`."""
    return next(a.config for a in ASSIGNERS.values() if a.config_section == section)


def _check_tables(cfg: dict) -> None:
    """Every table and figure of `tables:` resolved as the aggregation will resolve it (algorithm,
    env and row names), so a misspelt name fails here and not inside a Snakemake input function."""
    from .aggregate import spec   # it reads this module's tier helpers: imported at call time
    names = spec.table_names(cfg)
    for name in names:
        spec.resolve(cfg, name)
    for tier_name, t in cfg["tiers"].items():
        for i, name in enumerate(t.get("tables", [])):
            if name not in names:
                raise ConfigError(f"tiers.{tier_name}.tables[{i}]", f"unknown table {name!r}",
                                  f"use one of {', '.join(names)}, or drop `tables` to build every table the tier's cells fill")
    figures = spec.figures(cfg)
    for i, name in enumerate(figures.get("curves", [])):
        if name not in names:
            raise ConfigError(f"tables.figures.curves[{i}]", f"unknown table {name!r}", f"use one of {', '.join(names)}")
    if "recovery" in figures and figures["recovery"] not in names:
        raise ConfigError("tables.figures.recovery", f"unknown table {figures['recovery']!r}",
                          f"use one of {', '.join(names)}")
    if "masks" in figures:
        spec.masks_job(cfg)
        if figures["masks"]["env"] not in cfg["environments"]:
            raise ConfigError("tables.figures.masks.env", f"unknown env {figures['masks']['env']!r}",
                              f"use one of {', '.join(cfg['environments'])}")


def algorithm(cfg: dict, algo: str) -> dict:
    if algo not in cfg["algorithms"]:
        raise ConfigError("algo", f"unknown algorithm {algo!r}",
                          f"use one of {', '.join(cfg['algorithms'])} or add it under `algorithms` in the config")
    return cfg["algorithms"][algo]


BY_SUITE = "by_suite"   # backbones.<b>.by_suite.<suite>: the suite layer of the resolution
BY_ENV = "by_env"       # backbones.<b>.by_env.<env>: the task layer, above it
LAYERS = (BY_SUITE, BY_ENV)


def _layered_envs(cfg: dict, section: dict) -> list[str | None]:
    """None (no layer) and every env a layer of this backbone section applies to: what validation
    resolves, so that a value only a suite or task layer sets is checked too."""
    suites = section.get(BY_SUITE, {})
    return [None, *dict.fromkeys([*(e for e, v in cfg["environments"].items() if v.get("suite") in suites),
                                  *section.get(BY_ENV, {})])]


def backbone_hp(cfg: dict, algo: str, quality: str, env: str | None = None) -> dict:
    """training.common < backbones.<backbone> < backbones.<backbone>.by_suite.<the env's suite> <
    backbones.<backbone>.by_env.<env> < algorithms.<algo>.options, merged name by name, then read
    at this quality (a per-quality map may sit at any layer). env None: neither the suite nor the
    task layer (what every task outside them gets)."""
    a = algorithm(cfg, algo)
    section = cfg["backbones"].get(a["backbone"], {})
    backbone = {k: v for k, v in section.items() if k not in LAYERS}
    by_suite = by_task = {}
    if env is not None:
        by_suite = section.get(BY_SUITE, {}).get(cfg["environments"].get(env, {}).get("suite"), {})
        by_task = section.get(BY_ENV, {}).get(env, {})
    return at_quality({**cfg["training"]["common"], **backbone, **by_suite, **by_task, **a.get("options", {})},
                      quality)


def reward_hp(cfg: dict, algo: str, quality: str) -> dict:
    """The assigner's config section (e.g. `causal:`) < algorithms.<algo>.reward_options, at this quality."""
    a = algorithm(cfg, algo)
    section = ASSIGNERS[a["rewards"]].config_section
    base = copy.deepcopy(cfg.get(section) or {}) if section else {}
    return at_quality({**base, **a.get("reward_options", {})}, quality)


def backbone_config(cfg: dict, algo: str, quality: str, env: str | None = None):
    """The algorithm's backbone hyper-parameters at this quality (and task), parsed into its config dataclass."""
    return parse_hp(BACKBONES[algorithm(cfg, algo)["backbone"]].config, backbone_hp(cfg, algo, quality, env),
                    f"algorithms.{algo}")


def reward_config(cfg: dict, algo: str, quality: str):
    """The algorithm's reward-assigner hyper-parameters at this quality, parsed (None: it takes none)."""
    config = ASSIGNERS[algorithm(cfg, algo)["rewards"]].config
    return None if config is None else parse_hp(config, reward_hp(cfg, algo, quality), f"algorithms.{algo}.reward_options")


def run_dir(cfg: dict, env: str, quality: str, algo: str, seed: int) -> str:
    return layout.run_dir(results_dir(cfg), env, quality, algo, int(seed))


def dataset_seed_of(tier_entry: dict, train_seed: int) -> int:
    """The dataset seed training seed i reads: dataset seed i where the tier collected it (OMAR's
    pairing: seeds' spreads then include the variance between datasets), else the tier's dataset
    seeds in turn (dataset_seeds[i mod their number]; with one dataset seed, every run reads it)."""
    seeds = tier_entry["dataset_seeds"]
    return train_seed if train_seed in seeds else seeds[train_seed % len(seeds)]


def train_job(cfg: dict, env: str, quality: str, algo: str, seed: int) -> TrainJob:
    """Everything one training run needs, resolved and checked: what config.yaml of the run folder records."""
    if quality not in QUALITIES:
        raise ConfigError("quality", f"unknown quality {quality!r}", f"use one of {', '.join(QUALITIES)}")
    a, t, root = algorithm(cfg, algo), tier(cfg), results_dir(cfg)
    data_seed = dataset_seed_of(t, int(seed))
    reads_raw = a.get("raw_dataset", ASSIGNERS[a["rewards"]].reads_raw)
    return TrainJob(
        env=env_entry(cfg, env),
        quality=quality,
        algo=algo,
        seed=int(seed),
        tier=cfg["tier"],
        backbone=a["backbone"],
        backbone_hp=backbone_hp(cfg, algo, quality, env),
        rewards=a["rewards"],
        rewards_hp=reward_hp(cfg, algo, quality),
        dataset_seed=data_seed,
        dataset=layout.dataset(root, "team", env, quality, data_seed),
        raw_dataset=layout.dataset(root, "raw", env, quality, data_seed) if reads_raw else None,
        behavior=layout.behavior_files(root, env, data_seed)["policies"],   # the frozen opponents
        updates=t.get("train_updates_overrides", {}).get(f"{env}/{quality}", t["train_updates"]),
        batch_size=t["train_batch_size"],
        eval_every=t["eval_every"],
        eval_episodes=t["eval_episodes"],
        final_eval_episodes=t.get("final_eval_episodes", t["eval_episodes"]),
        loop_steps_per_update=cfg["training"]["loop_steps_per_update"],
        table_score=cfg["training"]["table_score"],
    )
