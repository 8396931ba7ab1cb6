"""The suite descriptions that config validation reads (tasks, task_args, agent names; no suite
imported) against the real environments, which are the truth: every task of every registered suite."""
import inspect
import importlib

import pytest

from maccabench import config as C
from maccabench.envs import mpe
from maccabench.envs.mpe_tasks import OWN_TASKS
from maccabench.errors import ConfigError
from maccabench.registry import SUITES

MPE = SUITES["mpe"].describe().tasks
ADAPTER_ARGS = {"continuous_actions", "render_mode"}   # set by envs/mpe.py, never by a config


def real_mpe_args(task: str) -> dict:
    params = inspect.signature(importlib.import_module(f"mpe2.{task}").raw_env).parameters
    return {name: p.default for name, p in params.items() if name not in ADAPTER_ARGS}


def count_variations(task: str) -> list[dict]:
    """The defaults, and each agent/landmark count one larger (what changes the agent names)."""
    counts = [k for k, v in MPE[task].args.items()
              if isinstance(v, int) and not isinstance(v, bool) and k != "max_cycles"]
    return [{}] + [{k: MPE[task].args[k] + 1} for k in counts]


def test_mpe_description_lists_every_task_of_mpe2():
    assert sorted(MPE) == mpe.tasks()


@pytest.mark.parametrize("task", sorted(set(MPE) - set(OWN_TASKS)))
def test_mpe_task_args_and_defaults_are_mpe2s(task):
    assert MPE[task].args == real_mpe_args(task)


@pytest.mark.parametrize("task", sorted(MPE))
def test_mpe_agent_names_follow_task_args_as_in_mpe2(task):
    for args in count_variations(task):
        assert MPE[task].agent_names(args) == mpe.agent_names(task, args), args


def test_configured_environments_have_the_described_agents(cfg):
    for name, entry in cfg["environments"].items():
        if SUITES[entry["suite"]].installation_problem(entry["task"]):
            continue   # StarCraft II is not installed here: the real SMAC cannot be built to compare
        task = SUITES[entry["suite"]].describe().tasks[entry["task"]]
        real = SUITES[entry["suite"]].make_game(entry["task"], entry.get("task_args", {}), 1).agents
        assert task.agent_names(entry.get("task_args", {})) == real, name


def test_an_unknown_task_arg_is_named_before_mpe2_sees_it(cfg):
    cfg["environments"]["pp"].setdefault("task_args", {})["num_prey"] = 2
    with pytest.raises(ConfigError) as e:
        C.check(cfg)
    assert e.value.field == "environments.pp.task_args.num_prey" and "num_good" in str(e.value)
