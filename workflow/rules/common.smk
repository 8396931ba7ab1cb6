# Shared helpers: config validation (before any job starts), the results root, the tier's
# selections, and the job slices every rule passes to the CLI (maccabench.config builds them,
# so the CLI run by hand gets exactly the same job).
import json
import os
import sys

from snakemake.utils import validate

# Rules call `python -m maccabench`; point them (and this file) at the package in src/ so the
# workflow also runs from a checkout without `pip install -e .` (e.g. in a conda env from envs/).
SRC = os.path.join(workflow.basedir, "src")
sys.path.insert(0, SRC)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)

from maccabench import config as mbconfig
from maccabench import layout   # every path of the results tree
from maccabench.errors import ConfigError

try:
    mbconfig.check(config)  # friendly messages: field name and fix
except ConfigError as e:
    raise ValueError(f"\n\nInvalid configuration: {e}\n") from None
validate(config, "../schemas/config.schema.yaml")

RESULTS = mbconfig.results_dir(config)
TIER = mbconfig.tier(config)
QUALITIES = list(mbconfig.QUALITIES)


wildcard_constraints:
    env="|".join(config["environments"]),
    quality="|".join(QUALITIES),
    seed=r"\d+",


def job_json(job: dict) -> str:
    return json.dumps(job, sort_keys=True)


def tier_resources(rule: str) -> dict:
    """The `resources:` of `rule`'s jobs in the chosen tier (`tiers.<tier>.resources.<rule>` in the
    config); runtime grows with the attempt, so a retry after a time limit asks for more."""
    wanted = TIER["resources"].get(rule)
    if wanted is None:
        raise ConfigError(f"tiers.{config['tier']}.resources.{rule}", "is missing",
                          f"add `{rule}: {{runtime: <minutes>, mem_mb: <MB>}}` (see the other tiers)")
    resources = dict(wanted)
    if "runtime" in resources:
        base = resources["runtime"]
        resources["runtime"] = lambda w, attempt: base * attempt
    return resources


# ---- training (train.smk) ----------------------------------------------------------------------

def train_job(w):
    return mbconfig.train_job(config, w.env, w.quality, w.algo, int(w.seed))


def train_inputs(w) -> dict:
    job = train_job(w)
    inputs = {"dataset": job.dataset, "behavior": job.behavior}
    if job.raw_dataset:   # ground-truth ablations only
        inputs["raw"] = job.raw_dataset
    return inputs


def run_file(name: str) -> str:
    """A file of the run folder, as a wildcard pattern."""
    return layout.run_file(RESULTS, "{env}", "{quality}", "{algo}", "{seed}", name)
