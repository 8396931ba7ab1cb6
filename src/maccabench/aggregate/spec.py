"""The `tables:` section of the config, resolved for one tier: which run folders each table reads.

A table is declared once in config/config.yaml; its rows and columns come from the config's
registries (environments, the tier's envs/qualities/train seeds, algorithm names), never from
code. Kinds:

- `scores`:   rows = the tier's envs whose `metric` is the table's x the listed qualities,
              columns = algorithms (Table 1 for normalized_score, Table 2 for win_rate: a new
              suite's envs slot in by declaring their metric).
              `envs:` limits the rows to the named envs among those (the credit table).
- `sweep`:    one env and quality, rows = variants (label -> algorithm), columns = points in
              training time (fractions of the run), cells = score and a mask density (Tables 6, 8).
- `variants`: one env and quality, rows = variants, columns = final measures (Tables 7, 9-11).
- `recovery`: rows as `scores`, columns = MACCA algorithms, cells = correlation of the learned
              per-agent reward with the hidden individual reward (reward_recovery.json); for envs
              whose task declares its true causal masks, also precision / recall / F1 of the
              learned masks (maccabench.maskscore), and "no ground truth" for the other envs.
  `scores` and `recovery` take `envs:` to keep only some of the tier's envs (Table 1: the paper's).
- `hparams`:  rows = hyper-parameters (label -> field of the runs' config.yaml), columns = the
              qualities (`by_quality`) or one; cells = the values the runs of `envs` x `algos`
              resolved (Tables 3 and 4 regenerated from what was used, not from the config file).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import config as C
from .. import layout
from ..errors import ConfigError
from ..registry import SUITES

KINDS = ("scores", "sweep", "variants", "recovery", "hparams")
OPTIONS = ("allow_partial", "bootstrap", "labels", "figures")
MEASURES = ("score", "rho_sr", "rho_ar", "causal_loss")
DEFAULT_BOOTSTRAP = {"reps": 2000, "confidence": 0.95, "seed": 0}


@dataclass(frozen=True)
class RunKey:
    env: str
    quality: str
    algo: str
    seed: int

    def folder(self, results: str | Path) -> Path:
        return Path(layout.run_dir(results, self.env, self.quality, self.algo, self.seed))

    def file(self, results: str | Path, name: str) -> Path:
        """A file of the run folder (layout.FINAL, layout.RECOVERY, ...)."""
        return self.folder(results) / name

    def __str__(self) -> str:
        return f"{self.env}/{self.quality}/{self.algo}/seed{self.seed}"


@dataclass
class Table:
    name: str
    kind: str
    title: str
    group: str
    tier: str
    results: Path
    seeds: list[int]
    metric: str | None                           # what "score" means in this table
    rows: list[tuple[str, str]]                  # (env, quality), (label, algo) or (label, config field)
    algos: list[str]                             # columns of scores/recovery tables
    env: str | None = None                       # sweep/variants: the one env and quality
    quality: str | None = None
    parameter: str | None = None                 # header of the variants' label column
    at: list[float] = field(default_factory=list)
    density: str | None = None
    measures: list[str] = field(default_factory=lambda: ["score"])
    improvement: list[tuple[str, str]] = field(default_factory=list)   # (better?, than): P(X > Y)
    paper: str | None = None
    description: str = ""
    allow_partial: bool = False
    bootstrap: dict = field(default_factory=lambda: dict(DEFAULT_BOOTSTRAP))
    labels: dict = field(default_factory=dict)
    inactive_reason: str = ""                    # why the tier gives this table no rows
    paper_rows: dict = field(default_factory=dict)       # env -> its rows' key in the paper's values (`paper_as`)
    envs: list[str] = field(default_factory=list)        # hparams: the envs whose runs are read
    qualities: list[str] = field(default_factory=list)   # hparams: the qualities whose runs are read
    by_quality: bool = False                     # hparams: one column per quality
    suite_notes: list[str] = field(default_factory=list)   # what rows of stand-in suites ran on (SMAX)

    def to_job(self) -> dict:
        """JSON-able form: what a Snakemake rule passes to the CLI (`--job`)."""
        d = asdict(self)
        d["results"] = str(self.results)
        return d

    @classmethod
    def from_job(cls, d: dict) -> "Table":
        d = dict(d)
        d["results"] = Path(d["results"])
        d["rows"] = [tuple(r) for r in d["rows"]]
        d["improvement"] = [tuple(p) for p in d["improvement"]]
        return cls(**d)

    @property
    def active(self) -> bool:
        return bool(self.rows)

    def label(self, key: str) -> str:
        return str(self.labels.get(key, key))

    def run_algos(self) -> list[str]:
        if self.kind in ("sweep", "variants"):
            return list(dict.fromkeys(algo for _, algo in self.rows))
        return list(self.algos)

    def cells(self) -> list[tuple[str, str]]:
        """(env, quality) pairs this table reads."""
        if self.kind == "hparams":
            return [(e, q) for e in self.envs for q in self.qualities] if self.rows else []
        if self.kind in ("sweep", "variants"):
            return [(self.env, self.quality)] if self.rows else []
        return list(self.rows)

    def runs(self) -> list[RunKey]:
        return [RunKey(env, q, algo, s) for env, q in self.cells() for algo in self.run_algos() for s in self.seeds]

    def final_files(self, runs: list[RunKey] | None = None) -> list[str]:
        return [str(k.file(self.results, layout.FINAL)) for k in (self.runs() if runs is None else runs)]

    def recovery_files(self, runs: list[RunKey] | None = None) -> list[str]:
        if self.kind != "recovery":
            return []
        return [str(k.file(self.results, layout.RECOVERY)) for k in (self.runs() if runs is None else runs)]

    def input_files(self) -> list[str]:
        """What the aggregate rule needs. With allow_partial only the runs finished now (the table
        then never schedules training); otherwise every run, so Snakemake builds the missing ones."""
        keys = self.runs()
        if self.allow_partial:
            keys = [k for k in keys if k.file(self.results, layout.FINAL).exists()]
            if self.kind == "recovery":
                keys = [k for k in keys if k.file(self.results, layout.RECOVERY).exists()]
        return self.final_files(keys) + self.recovery_files(keys)

    def caption(self) -> str:
        seeds = ", ".join(map(str, self.seeds))
        text = f"{self.title}. {self.description}".strip()
        partial = " Partial tables are allowed (missing runs are marked)." if self.allow_partial else ""
        text += "".join(f" {note}." for note in self.suite_notes)
        return (f"{text} Tier `{self.tier}`: training seeds {seeds} ({len(self.seeds)} per cell); "
                f"numbers read from {layout.runs_dir(self.results)}/.{partial}")


def section(cfg: dict) -> dict:
    if "tables" not in cfg:
        raise ConfigError("tables", "is missing", "add the `tables:` section (see config/config.yaml in the repository)")
    return cfg["tables"]


def table_names(cfg: dict) -> list[str]:
    return [k for k in section(cfg) if k not in OPTIONS]


def train_seeds(cfg: dict) -> list[int]:
    t = C.tier(cfg)
    if "train_seeds" not in t:
        raise ConfigError(f"tiers.{cfg['tier']}.train_seeds", "is missing",
                          "list the training seeds of this tier (the training stage reads them too)")
    return [int(s) for s in t["train_seeds"]]


def _check_algos(cfg: dict, where: str, algos: list[str]) -> None:
    known = cfg.get("algorithms")
    if known is None:
        raise ConfigError("algorithms", "is missing, so no run can exist for the tables",
                          "add the training stage's `algorithms:` registry")
    bad = [a for a in algos if a not in known]
    if bad:
        raise ConfigError(where, f"names algorithms not in `algorithms:`: {', '.join(bad)}",
                          f"use one of {', '.join(known)} or add an entry under `algorithms:`")


def _check_envs(cfg: dict, where: str, names: list[str]) -> None:
    bad = [e for e in names if e not in cfg["environments"]]
    if bad:
        raise ConfigError(where, f"names envs not in `environments:`: {', '.join(bad)}",
                          f"use one of {', '.join(cfg['environments'])}")


def _not_listed(cfg: dict, name: str) -> str:
    """Why a table is off in this tier when the tier lists its tables and this one is not among them."""
    listed = C.tier(cfg).get("tables")
    if listed is None or name in listed:
        return ""
    return f"tier {cfg['tier']} does not list it in tiers.{cfg['tier']}.tables"


def _suite_notes(cfg: dict, env_names) -> list[str]:
    """The table notes of the suites these envs belong to (registry.SuiteDescription.table_note)."""
    suites = dict.fromkeys(cfg["environments"][e]["suite"] for e in env_names)
    described = (SUITES[s].describe() for s in suites if s in SUITES)
    return [d.table_note() for d in described if d.table_note is not None]


def resolve(cfg: dict, name: str) -> Table:
    """The table `name` for the config's tier; ConfigError naming the field when it is wrong."""
    sec = section(cfg)
    if name not in sec or name in OPTIONS:
        raise ConfigError("table", f"unknown table {name!r}", f"use one of {', '.join(table_names(cfg))}")
    spec = sec[name]
    where = f"tables.{name}"
    kind = spec["kind"]
    t = C.tier(cfg)
    not_listed = _not_listed(cfg, name)
    if not_listed:   # the tier's own choice of tables cuts this one's cells
        t = {**t, "envs": [], "qualities": []}
    envs = cfg["environments"]
    common = dict(
        name=name, kind=kind, title=spec.get("title", name), group=spec.get("group", "main"),
        tier=cfg["tier"], results=Path(C.results_dir(cfg)), seeds=train_seeds(cfg),
        paper=spec.get("paper"), description=spec.get("description", ""),
        allow_partial=bool(sec.get("allow_partial", False)),
        bootstrap={**DEFAULT_BOOTSTRAP, **sec.get("bootstrap", {})}, labels=dict(sec.get("labels", {})),
        paper_rows={e: entry["paper_as"] for e, entry in envs.items() if "paper_as" in entry},
    )
    if kind in ("scores", "recovery"):
        algos = list(spec["algos"])
        _check_algos(cfg, f"{where}.algos", algos)
        improvement = [(x, y) for x, y in spec.get("improvement", {}).items()]
        for i, (x, y) in enumerate(improvement):
            for a in (x, y):
                if a not in algos:
                    raise ConfigError(f"{where}.improvement", f"compares {a!r}, which is not a column of the table",
                                      f"use columns of `{where}.algos`: {', '.join(algos)}")
        metric = spec.get("metric")
        _check_envs(cfg, f"{where}.envs", spec.get("envs", []))
        row_envs = [e for e in t["envs"] if (metric is None or envs[e]["metric"] == metric)
                    and e in spec.get("envs", t["envs"])]
        qualities = [q for q in spec.get("qualities", list(C.QUALITIES)) if q in t["qualities"]]
        rows = [(e, q) for e in row_envs for q in qualities]
        reason = "" if rows else not_listed or (f"tier {cfg['tier']} has no environment with metric {metric!r}"
                                  + (f" among {', '.join(spec['envs'])}" if "envs" in spec else "")
                                  + f" (add one under `environments:` and to tiers.{cfg['tier']}.envs)")
        return Table(**common, metric=metric, rows=rows, algos=algos, improvement=improvement, inactive_reason=reason,
                     suite_notes=_suite_notes(cfg, (e for e, _ in rows)))

    if kind == "hparams":
        algos = list(spec["algos"])
        _check_algos(cfg, f"{where}.algos", algos)
        _check_envs(cfg, f"{where}.envs", spec.get("envs", []))
        row_envs = [e for e in t["envs"] if e in spec.get("envs", t["envs"])]
        fields = [(str(label), path) for label, path in spec["rows"].items()]
        reason = "" if row_envs else not_listed or f"tier {cfg['tier']} runs none of {', '.join(spec['envs'])}"
        return Table(**common, metric=None, rows=fields if row_envs else [], algos=algos, envs=row_envs,
                     qualities=list(t["qualities"]), by_quality=bool(spec.get("by_quality", False)),
                     inactive_reason=reason)

    # sweep / variants: one env and quality, rows are variants; `env` may list envs by preference
    # (the paper's SMAC ablations: 5m_vs_6m where the tier has it, else 2s3z, else CN)
    quality = spec["quality"]
    preferred = [spec["env"]] if isinstance(spec["env"], str) else list(spec["env"])
    for i, e in enumerate(preferred):
        if e not in envs:
            field_name = f"{where}.env" if isinstance(spec["env"], str) else f"{where}.env[{i}]"
            raise ConfigError(field_name, f"unknown env {e!r}", f"use one of {', '.join(envs)}")
    def runs_here(e):
        return e in t["envs"] and quality in t["qualities"]
    env = next((e for e in preferred if runs_here(e)), preferred[0])
    variants = [(str(label), algo) for label, algo in spec["rows"].items()]
    for label, algo in variants:   # name the row, not just the map
        _check_algos(cfg, f"{where}.rows.{label}", [algo])
    labels = [label for label, _ in variants]
    improvement = [tuple(p) for p in spec.get("improvement", [])]
    for x, y in improvement:
        for lab in (x, y):
            if lab not in labels:
                raise ConfigError(f"{where}.improvement", f"compares {lab!r}, which is not a row label",
                                  f"use row labels of `{where}.rows`: {', '.join(labels)}")
    in_tier = runs_here(env)
    reason = "" if in_tier else not_listed or (f"tier {cfg['tier']} does not run env {' or '.join(map(repr, preferred))}"
                                               f" with quality {quality!r}")
    measures = list(spec.get("measures", ["score"]))
    title = common.pop("title").format(env=common["labels"].get(env, env))   # "{env}": the env it runs on
    return Table(**common, title=title, metric=envs[env]["metric"], rows=variants if in_tier else [], algos=[],
                 env=env, quality=quality, parameter=spec.get("parameter", "variant"),
                 at=[float(a) for a in spec.get("at", [])], density=spec.get("density"),
                 measures=measures, improvement=improvement, inactive_reason=reason,
                 suite_notes=_suite_notes(cfg, [env] if in_tier else []))


def tables(cfg: dict, group: str | None = None, active_only: bool = True) -> list[Table]:
    """Every table of the config (or of one group), resolved; by default only those the tier fills."""
    out = [resolve(cfg, n) for n in table_names(cfg)]
    return [tb for tb in out if (group is None or tb.group == group) and (tb.active or not active_only)]


def figures(cfg: dict) -> dict:
    return section(cfg).get("figures", {})


def masks_job(cfg: dict) -> dict:
    """The Figure-4 job: tables.figures.masks with the tier's seeds and results folder."""
    m = figures(cfg).get("masks")
    if not m:
        raise ConfigError("tables.figures.masks", "is missing", "name the env, quality and (MACCA) algo of Figure 4")
    _check_algos(cfg, "tables.figures.masks.algo", [m["algo"]])
    return {"results": C.results_dir(cfg), "tier": cfg["tier"], "env": m["env"], "quality": m["quality"],
            "algo": m["algo"], "seeds": train_seeds(cfg), "snapshots": int(m.get("snapshots", 3)),
            "labels": dict(section(cfg).get("labels", {}))}
