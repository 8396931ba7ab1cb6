"""What the `mpe` suite offers, described without importing mpe2 (or torch): its tasks, the
`task_args` each task accepts (with mpe2's defaults) and its agent names as a function of them.

Only for validating a configuration fast (`config.check`, run on every Snakemake parse). The real
environment is the truth: tests/test_suite_descriptions.py builds every task with mpe2 and
compares it with this description, so a new mpe2 release that changes a task fails there.
"""
from __future__ import annotations

from ..registry import SuiteDescription, TaskDescription


def _numbered(prefix: str, n: int) -> list[str]:
    return [f"{prefix}_{i}" for i in range(n)]


# keyword arguments every mpe2 task takes besides its own (`continuous_actions` and `render_mode`
# belong to the adapter, src/maccabench/envs/mpe.py, and are not task_args)
_COMMON = {"max_cycles": 25, "dynamic_rescaling": True, "benchmark_data": False}
_NEIGHBOURS = {"num_agent_neighbors": None, "num_landmark_neighbors": None}


def _task(own: dict, agents) -> TaskDescription:
    return TaskDescription(args={**own, **_COMMON}, agents=agents)


# Our own scenarios on mpe2's world (envs/omar_scenarios.py: OMAR's MPE tasks and the credit task):
# task -> its task_args with OMAR's defaults. omar_scenarios reads them from here.
OWN_TASKS: dict[str, dict] = {
    "omar_simple_spread": {"N": 3, "max_cycles": 25},
    "simple_spread_assigned": {"N": 3, "max_cycles": 25},
    "omar_simple_tag": {"num_good": 1, "num_adversaries": 3, "num_obstacles": 2, "max_cycles": 25,
                        "omar_forces": True},
    "omar_simple_world": {"num_good": 1, "num_adversaries": 3, "num_obstacles": 1, "num_food": 2,
                          "num_forests": 2, "max_cycles": 25, "omar_forces": True},
}


def _own(task: str, agents) -> TaskDescription:
    return TaskDescription(args=OWN_TASKS[task], agents=agents)


def _chase(a: dict) -> list[str]:
    return _numbered("adversary", a["num_adversaries"]) + _numbered("agent", a["num_good"])


SUITE = SuiteDescription(tasks={
    "omar_simple_spread": _own("omar_simple_spread", lambda a: _numbered("agent", a["N"])),
    "simple_spread_assigned": _own("simple_spread_assigned", lambda a: _numbered("agent", a["N"])),
    "omar_simple_tag": _own("omar_simple_tag", _chase),
    "omar_simple_world": _own("omar_simple_world", _chase),
    "collect_treasure_v1": _task({"num_collectors": 6, "num_deposits": 2, "num_treasures": 6},
                                 lambda a: _numbered("collector", a["num_collectors"]) + _numbered("deposit", a["num_deposits"])),
    "simple_adversary_v3": _task({"N": 2, **_NEIGHBOURS}, lambda a: ["adversary_0"] + _numbered("agent", a["N"])),
    "simple_crypto_v3": _task({}, lambda a: ["eve_0", "bob_0", "alice_0"]),
    "simple_formation_v1": _task({"N": 4, "terminate_on_success": False}, lambda a: _numbered("agent", a["N"])),
    "simple_line_v1": _task({"N": 4, "terminate_on_success": False}, lambda a: _numbered("agent", a["N"])),
    "simple_push_v3": _task({}, lambda a: ["adversary_0", "agent_0"]),
    "simple_reference_v3": _task({"local_ratio": 0.5}, lambda a: ["agent_0", "agent_1"]),
    "simple_speaker_listener_v4": _task({}, lambda a: ["speaker_0", "listener_0"]),
    "simple_spread_v3": _task({"N": 3, "local_ratio": 0.5, "curriculum": False, "terminate_on_success": False,
                               **_NEIGHBOURS}, lambda a: _numbered("agent", a["N"])),
    "simple_tag_v3": _task({"num_good": 1, "num_adversaries": 3, "num_obstacles": 2, "curriculum": False,
                            "terminate_on_success": False, **_NEIGHBOURS},
                           lambda a: _numbered("adversary", a["num_adversaries"]) + _numbered("agent", a["num_good"])),
    # the first adversary is the leader
    "simple_world_comm_v3": _task({"num_good": 2, "num_adversaries": 4, "num_obstacles": 1, "num_food": 2,
                                   "num_forests": 2},
                                  lambda a: ["leadadversary_0"] + _numbered("adversary", a["num_adversaries"] - 1)
                                  + _numbered("agent", a["num_good"])),
    "simple_v3": _task({}, lambda a: ["agent_0"]),
})
