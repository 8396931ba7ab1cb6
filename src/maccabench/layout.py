"""The results tree of one tier, in one place: every path the pipeline writes or reads under
`results/<tier>/`.

Each function takes the results root and the job's coordinates (env, quality, algo, seed, ...)
and returns a path string. The package calls them with concrete values; the Snakemake rules call
them with wildcard patterns (`layout.run_dir(RESULTS, "{env}", "{quality}", "{algo}", "{seed}")`),
which come back as patterns. Keep this module free of heavy imports: Snakemake imports it while
parsing the workflow.

    behavior/{env}/seed{k}/                       behaviour policies (BEHAVIOR_FILES)
    datasets/{raw,team}/{env}/{quality}/seed{k}.h5 (+ .stats.json beside raw files)
    runs/{env}/{quality}/{algo}/seed{s}/          one training run (the run-folder files below)
    tables/  figures/  report.html  report.config.json
    logs/<stage>/<job>.log   benchmarks/<stage>/<job>.tsv   (<job>: the job's coordinates as a path)
"""
from __future__ import annotations

from pathlib import Path

DATASET_KINDS = ("raw", "team")   # raw: individual rewards; team: team reward only

# files of a behaviour folder: Snakemake output name -> file name
BEHAVIOR_FILES = {"summary": "summary.json", "policies": "policies.pt",
                  "replay": "replay_medium.npz", "curve": "curve.csv"}

# files of a run folder (their format: maccabench.runfolder)
RUN_CONFIG = "config.yaml"
METRICS = "metrics.csv"
FINAL = "final.json"             # written last: its presence means the run finished
CHECKPOINT = "ckpt.pt"
MASKS = "masks.npz"
RECOVERY = "reward_recovery.json"

TABLE_FORMATS = ("csv", "md", "tex", "html")
FIGURE_FORMATS = ("png", "pdf")


# ---- job coordinates as relative paths (also the names of logs and benchmarks) ----------------

def behavior_job(env, seed) -> str:
    return f"{env}/seed{seed}"


def dataset_job(env, quality, seed) -> str:
    return f"{env}/{quality}/seed{seed}"


def run_job(env, quality, algo, seed) -> str:
    return f"{env}/{quality}/{algo}/seed{seed}"


# ---- behaviour, datasets ----------------------------------------------------------------------

def behavior_dir(root, env, seed) -> str:
    return f"{root}/behavior/{behavior_job(env, seed)}"


def behavior_files(root, env, seed) -> dict[str, str]:
    """Every file of a behaviour folder, by the name the rules give it (BEHAVIOR_FILES)."""
    folder = behavior_dir(root, env, seed)
    return {key: f"{folder}/{name}" for key, name in BEHAVIOR_FILES.items()}


def dataset(root, kind: str, env, quality, seed) -> str:
    if kind not in DATASET_KINDS:
        raise ValueError(f"dataset kind {kind!r}: use one of {', '.join(DATASET_KINDS)}")
    return f"{root}/datasets/{kind}/{dataset_job(env, quality, seed)}.h5"


def stats_of(dataset_file: str | Path) -> str:
    """The collection statistics written beside a (raw) dataset file."""
    path = str(dataset_file)
    if not path.endswith(".h5"):
        raise ValueError(f"{path}: a dataset file ends in .h5")
    return path[: -len(".h5")] + ".stats.json"


# ---- run folders ------------------------------------------------------------------------------

def runs_dir(root) -> str:
    return f"{root}/runs"


def run_dir(root, env, quality, algo, seed) -> str:
    return f"{runs_dir(root)}/{run_job(env, quality, algo, seed)}"


def run_file(root, env, quality, algo, seed, name: str) -> str:
    """A file of a run folder: name is one of RUN_CONFIG, METRICS, FINAL, CHECKPOINT, MASKS, RECOVERY."""
    return f"{run_dir(root, env, quality, algo, seed)}/{name}"


# ---- tables, figures, report ------------------------------------------------------------------

def tables_dir(root) -> str:
    return f"{root}/tables"


def table_file(root, name, fmt: str) -> str:
    return f"{tables_dir(root)}/{name}.{fmt}"


def vs_paper(table) -> str:
    """Name of a table's side-by-side version with the paper's values."""
    return f"{table}_vs_paper"


def figures_dir(root) -> str:
    return f"{root}/figures"


def figure_file(root, name, fmt: str) -> str:
    return f"{figures_dir(root)}/{name}.{fmt}"


def curves_figure(table) -> str:
    """Name of the learning-curve figure of a table's runs."""
    return f"curves_{table}"


MASKS_FIGURE = "figure4_masks"
RECOVERY_FIGURE = "recovery_scatter"


def report(root) -> str:
    return f"{root}/report.html"


def report_config(root) -> str:
    """The config the report's own `snakemake --report` run reads."""
    return f"{root}/report.config.json"


# ---- logs and benchmarks ----------------------------------------------------------------------

def log(root, stage: str, job) -> str:
    """Log of one job of a stage (a rule name or `aggregate`); job: its coordinates (run_job, ...)."""
    return f"{root}/logs/{stage}/{job}.log"


def benchmarks_dir(root) -> str:
    return f"{root}/benchmarks"


def benchmark(root, stage: str, job) -> str:
    """Snakemake benchmark file (wall time) of one job; maccabench.aggregate.timing sums them."""
    return f"{benchmarks_dir(root)}/{stage}/{job}.tsv"
