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
from .errors import ConfigError, MaccabenchError


def _load(ref: str):
    """"package.module:attribute" -> the attribute (importing the module)."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


# ---- backbones ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class BackboneEntry:
    """One backbone name (`icql`, `omar`, `maicq`) and its implementations: `impl` for continuous
    actions, `discrete_impl` for discrete ones (integer actions with availability masks); the
    env's spec picks one (`load`, `build`), and validation refuses a name that has none for an
    env's kind before any job starts (`kind_problem`). Both take the same config dataclass, so one
    `backbones.<name>` section serves every suite."""
    impl: str | None                # "module:Class"; the class is built as Class(spec, config, device, seed)
    config: type                    # its hyper-parameters (hparams dataclass)
    # what is wrong with its parsed config paired with a reward assigner (shared: every agent gets
    # the team reward), or None; checked before any job starts
    check_rewards: Callable[[object, bool], str | None] | None = None
    discrete_impl: str | None = None
    # every agent's losses, gradient clipping and BatchNorm are its own (no mixer, no joint critic),
    # so S seeds of N agents are one backbone of S*N agents: the same maths, other random draws
    independent_agents: bool = False

    def ref(self, discrete: bool) -> str | None:
        return self.discrete_impl if discrete else self.impl

    def kind_problem(self, name: str, discrete: bool) -> str | None:
        """Why backbone `name` cannot train an env of this kind, or None."""
        if self.ref(discrete) is not None:
            return None
        kind, other = ("discrete", "continuous") if discrete else ("continuous", "discrete")
        fits = [b for b, e in BACKBONES.items() if e.ref(discrete) is not None]
        return (f"backbone {name} has no implementation for {kind} actions (only for {other} ones); "
                f"backbones for {kind} actions: {', '.join(fits) or 'none'}")

    def load(self, discrete: bool) -> type:
        ref = self.ref(discrete)
        if ref is None:   # validation (config.check, jobs.TrainJob) refuses this before any job starts
            kind, other = ("discrete", "continuous") if discrete else ("continuous", "discrete")
            raise MaccabenchError(f"{self.impl or self.discrete_impl} is for {other} actions only, not {kind} ones. "
                                  f"Fix: train this env with a backbone that has a {kind}-action implementation")
        return _load(ref)

    def build(self, spec, config, device, seed: int):
        """The implementation for the env's kind (spec.discrete), built."""
        return self.load(spec.discrete)(spec, config, device, seed)


# name, as written in `algorithms.<name>.backbone` and `backbones:`
BACKBONES: dict[str, BackboneEntry] = {
    "icql": BackboneEntry("maccabench.algos.icql:ICQL", hparams.ICQLConfig,
                          discrete_impl="maccabench.algos.icql_discrete:DiscreteICQL", independent_agents=True),
    "omar": BackboneEntry("maccabench.algos.omar:OMAR", hparams.OMARConfig,
                          discrete_impl="maccabench.algos.omar_discrete:DiscreteOMAR", independent_agents=True),
    "maicq": BackboneEntry("maccabench.algos.maicq:MAICQ", hparams.MAICQConfig,
                           check_rewards=hparams.maicq_rewards_problem,
                           discrete_impl="maccabench.algos.maicq_discrete:DiscreteMAICQ"),
    # credit assignment learnt from the team reward (the paper's Table 5): discrete actions only
    "qmix-cql": BackboneEntry(None, hparams.QMIXCQLConfig, check_rewards=hparams.shared_rewards_problem,
                              discrete_impl="maccabench.algos.qmix_cql:QMIXCQL"),
    "shaq": BackboneEntry(None, hparams.SHAQConfig, check_rewards=hparams.shared_rewards_problem,
                          discrete_impl="maccabench.algos.shaq:SHAQ"),
    "sqddpg": BackboneEntry(None, hparams.SQDDPGConfig, check_rewards=hparams.shared_rewards_problem,
                            discrete_impl="maccabench.algos.sqddpg:SQDDPG"),
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
    # what tables say their rows of this suite ran on, where the suite stands in for another
    # benchmark (SMAX for SMAC); a function, so that a package version is read when a table is made
    table_note: Callable[[], str] | None = None


@dataclass(frozen=True)
class SuiteEntry:
    game: str                       # "module:Class", Class(task, task_args, num_envs) -> envs.base.Game
    description: str                # "module:SUITE", a SuiteDescription that imports no suite package
    discrete: bool = False          # integer actions with availability masks (the game's `discrete`)
    # "module:function", function(task) -> (what this machine lacks to run the task, how to install
    # it), or None; for suites whose software pip cannot install (StarCraft II). Checked for the
    # chosen tier before any job (config.check).
    installation: str | None = None

    def make_game(self, task: str, task_args: dict, num_envs: int):
        return _load(self.game)(task, task_args, num_envs)

    def installation_problem(self, task: str) -> tuple[str, str] | None:
        return _load(self.installation)(task) if self.installation else None

    def describe(self) -> SuiteDescription:
        return _load(self.description)


# name, as written in `environments.<env>.suite`
SUITES: dict[str, SuiteEntry] = {
    "mpe": SuiteEntry("maccabench.envs.mpe:MPEGame", "maccabench.envs.mpe_tasks:SUITE"),
    # jaxmarl's SMAX (StarCraft-like, discrete actions); MMM2 does not exist there (envs/smax_maps.py)
    "smax": SuiteEntry("maccabench.envs.smax:SmaxGame", "maccabench.envs.smax_maps:SUITE", discrete=True),
    # the real StarCraft Multi-Agent Challenge, where StarCraft II is installed (envs/smac_maps.py)
    "smac": SuiteEntry("maccabench.envs.smac:SmacGame", "maccabench.envs.smac_maps:SUITE", discrete=True,
                       installation="maccabench.envs.smac_maps:installation_problem"),
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
