"""The one registry of backbones, reward assigners and environment suites. Torch-free.

Each entry names its implementation by module path (`"module:attribute"`, imported on first use,
so reading or validating a configuration never imports torch, mpe2 or any other suite), its config
dataclass (src/maccabench/hparams.py), and its capabilities as fields: the training loop and the
validation read these instead of probing implementations with `hasattr`.

An *algorithm* (a name under `algorithms:` in config/config.yaml, e.g. `omar` or `macca-omar`) is
a backbone from `BACKBONES` plus a reward assigner from `ASSIGNERS`; `config.train_job` resolves it
into one `jobs.TrainJob`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from . import hparams
from .errors import ConfigError


def _load(ref: str):
    """"package.module:attribute" -> the attribute (importing the module)."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


# ---- backbones ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class BackboneEntry:
    impl: str                       # "module:Class"; the class is built as Class(spec, config, device, seed)
    config: type                    # its hyper-parameters (hparams dataclass)
    # what is wrong with its parsed config paired with a reward assigner (shared: every agent gets
    # the team reward), or None; checked before any job starts
    check_rewards: Callable[[object, bool], str | None] | None = None

    def load(self) -> type:
        return _load(self.impl)

    def build(self, spec, config, device, seed: int):
        return self.load()(spec, config, device, seed)


# name, as written in `algorithms.<name>.backbone` and `backbones:`
BACKBONES: dict[str, BackboneEntry] = {
    "icql": BackboneEntry("maccabench.algos.icql:ICQL", hparams.ICQLConfig),
    "omar": BackboneEntry("maccabench.algos.omar:OMAR", hparams.OMARConfig),
    "maicq": BackboneEntry("maccabench.algos.maicq:MAICQ", hparams.MAICQConfig,
                           check_rewards=hparams.maicq_rewards_problem),
}


# ---- reward assigners --------------------------------------------------------------------------

@dataclass(frozen=True)
class AssignerEntry:
    impl: str                       # "module:function", function(rewards.RewardContext) -> RewardAssigner
    shared: bool                    # every agent gets the same reward (the team reward)
    config: type | None = None      # its hyper-parameters (hparams dataclass); None: it takes none
    config_section: str | None = None   # top-level config section holding their values
    reads_raw: bool = False         # needs the raw dataset (individual rewards): ground truth only
    pretrains: bool = False         # has pretrain(sample_batch, planned_steps): called before a fresh run's first update
    mask_snapshots: bool = False    # has mask_snapshot(probe) -> (s_to_r, a_to_r): masks.npz and reward recovery

    def build(self, ctx):
        return _load(self.impl)(ctx)


# name, as written in `algorithms.<name>.rewards`
ASSIGNERS: dict[str, AssignerEntry] = {
    "team": AssignerEntry("maccabench.rewards:team_reward", shared=True),          # every agent: the team reward
    # controls for reward scale (DESIGN.md "Controls"): R / N to every agent; a random split of R per sample
    "team_mean": AssignerEntry("maccabench.rewards:team_mean_reward", shared=True),
    "random_split": AssignerEntry("maccabench.rewards:random_split", shared=False),
    "causal": AssignerEntry("maccabench.causal:causal_model", shared=False, config=hparams.CausalConfig,
                            config_section="causal", pretrains=True, mask_snapshots=True),
    "ground_truth": AssignerEntry("maccabench.causal:ground_truth", shared=False, reads_raw=True),   # Table 9
    "causal_gt": AssignerEntry("maccabench.causal:causal_model_of_ground_truth", shared=False,       # Table 9
                               config=hparams.CausalConfig, config_section="causal", reads_raw=True,
                               pretrains=True, mask_snapshots=True),
}


# ---- environment suites --------------------------------------------------------------------------

@dataclass(frozen=True)
class TaskDescription:
    """One task of a suite as validation sees it: the task_args it accepts (name -> the suite's
    default; a None default takes an integer or null) and its agent names given the task_args."""
    args: dict
    agents: Callable[[dict], list[str]]

    def check_args(self, task_args: dict, where: str) -> None:
        """Names and types of task_args against the task's own; ConfigError naming `where`."""
        for name, value in task_args.items():
            if name not in self.args:
                raise ConfigError(f"{where}.{name}", "is not an argument of this task",
                                  f"remove it or use one of {', '.join(sorted(self.args))}")
            default = self.args[name]
            want = (bool,) if isinstance(default, bool) else (int, type(None)) if default is None else \
                (int,) if isinstance(default, int) else (int, float)
            if not isinstance(value, want) or (isinstance(value, bool) and want != (bool,)):
                raise ConfigError(f"{where}.{name}", f"must be {' or '.join(t.__name__ for t in want)}, got {value!r}",
                                  f"write a value like the task's default, {default!r}")

    def agent_names(self, task_args: dict) -> list[str]:
        return list(self.agents({**self.args, **task_args}))


@dataclass(frozen=True)
class SuiteDescription:
    tasks: dict[str, TaskDescription]


@dataclass(frozen=True)
class SuiteEntry:
    game: str                       # "module:Class", Class(task, task_args, num_envs) -> envs.base.Game
    description: str                # "module:SUITE", a SuiteDescription that imports no suite package
    discrete: bool = False          # integer actions with availability masks (the game's `discrete`)

    def make_game(self, task: str, task_args: dict, num_envs: int):
        return _load(self.game)(task, task_args, num_envs)

    def describe(self) -> SuiteDescription:
        return _load(self.description)


# name, as written in `environments.<env>.suite`
SUITES: dict[str, SuiteEntry] = {
    "mpe": SuiteEntry("maccabench.envs.mpe:MPEGame", "maccabench.envs.mpe_tasks:SUITE"),
    # jaxmarl's SMAX (StarCraft-like, discrete actions); MMM2 does not exist there (envs/smax_maps.py)
    "smax": SuiteEntry("maccabench.envs.smax:SmaxGame", "maccabench.envs.smax_maps:SUITE", discrete=True),
}


# ---- behaviour learners ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LearnerEntry:
    impl: str                       # "module:Class"; Class(game, layout, config, seed), see behavior/online.py
    config: type                    # its hyper-parameters (hparams dataclass), `behavior.<name>` in the config
    discrete: bool                  # the action kind it serves: integer actions with availability masks

    @property
    def action_kind(self) -> str:
        return action_kind(self.discrete)

    def load(self) -> type:
        return _load(self.impl)


def action_kind(discrete: bool) -> str:
    return "discrete" if discrete else "continuous"


# name, as written in `behavior.learner` (suite or env -> learner) and `behavior.<name>:`
BEHAVIOR_LEARNERS: dict[str, LearnerEntry] = {
    "matd3": LearnerEntry("maccabench.behavior.matd3:MATD3", hparams.MATD3Config, discrete=False),
    "ippo": LearnerEntry("maccabench.behavior.ippo:IPPO", hparams.IPPOConfig, discrete=True),
}
