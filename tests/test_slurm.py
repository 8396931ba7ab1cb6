"""The SLURM path, proven on a real cluster: the smoke tier through `snakemake --profile slurm`.

The same targets run twice into temporary results roots, once locally (`--cores 2`) and once with
the project's profile (`slurm` in the repository root). While the SLURM run is under way the test
requeues one behaviour job (what preemption does on clusters that requeue) and kills the training
job after its first checkpoint. Then it checks, against SLURM's own accounting records (`sacct`):
  - every heavy job (behaviour, collection, training) was submitted with sbatch and completed,
    and no light job (masking, aggregation) was: those ran beside Snakemake;
  - the requeued job ran again under its job id; the killed job was resubmitted with twice the
    time limit, and the training run resumed from its checkpoint instead of starting over;
  - the outputs equal the local run's: dataset checksums, behaviour returns, training metrics.

Needs a SLURM controller with accounting (sacct); `sudo .ci/slurm.sh start` makes one on loopback.
Without one the test skips and says why; with MACCABENCH_REQUIRE_SLURM=1 (CI) it fails instead.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import h5py
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HEAVY = {"behavior", "collect", "train"}   # rules that must be SLURM jobs; all others stay local
TABLE = "table9"                           # a table of four training runs (CN expert)
REQUIRE = os.environ.get("MACCABENCH_REQUIRE_SLURM") == "1"
TIMEOUT_S = 3600

pytestmark = pytest.mark.slow


def _sh(*cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def cluster_problem() -> str | None:
    """Why the SLURM test cannot run here, or None when a usable cluster answers."""
    start = "start a loopback cluster with `sudo .ci/slurm.sh start` (docs/slurm.md)"
    for tool in ("sbatch", "squeue", "sacct", "scancel", "scontrol"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not on PATH: no SLURM client here; {start}"
    try:
        ping = _sh("scontrol", "ping")
        if "UP" not in ping.stdout:
            return f"no slurmctld answers `scontrol ping` ({(ping.stdout + ping.stderr).strip()}); {start}"
        acct = _sh("sacct", "-n", "-X", "-S", "now-1minutes")
    except subprocess.TimeoutExpired as e:
        return f"`{' '.join(e.cmd)}` did not answer in {e.timeout} s; {start}"
    if acct.returncode != 0:
        return (f"`sacct` fails ({acct.stderr.strip()}): the profile polls job states with sacct, which needs "
                f"slurmdbd; {start} (WITH_DBD=1, the default)")
    flags = re.search(r"^AccountingStoreFlags\s*=\s*(.*)$", _sh("scontrol", "show", "config").stdout, re.M)
    if not flags or "job_comment" not in flags.group(1):
        return ("sacct does not keep job comments, which name each job's rule: add "
                "`AccountingStoreFlags=job_comment` to slurm.conf (.ci/slurm.sh does)")
    return None


@dataclass
class Record:
    """One SLURM job as `sacct` reports it."""
    job_id: str
    comment: str
    state: str
    timelimit_min: int
    workdir: str
    submit_line: str


@dataclass
class Run:
    results: Path
    stdout: str
    run_dir: str = ""                                          # the training run under test
    records: list[Record] = field(default_factory=list)
    interrupted: dict[str, str] = field(default_factory=dict)   # rule -> SLURM job id the test interrupted


def smoke_targets(results: Path, cfg: dict) -> tuple[list[str], dict, str]:
    """What both runs build, a config overlay for both, and the training run the test interrupts.

    Every rule of the DAG in a few minutes: the smoke tier's datasets (behaviour, collection,
    masking), one table (four training runs and the local aggregation) and one more training run,
    lengthened so that it can be interrupted between checkpoints. MACCABENCH_SLURM_TARGETS="all"
    runs the whole smoke tier instead (177 jobs; slow on 2 cores)."""
    tier = cfg["tiers"]["smoke"]
    env, quality, algo, seed = tier["envs"][0], tier["qualities"][0], tier["algos"][0], tier["train_seeds"][0]
    run_dir = f"runs/{env}/{quality}/{algo}/seed{seed}"
    overlay = {"tiers": {"smoke": {"train_updates_overrides": {f"{env}/{quality}": 300}}}}
    targets = os.environ.get("MACCABENCH_SLURM_TARGETS", f"datasets {results}/smoke/tables/{TABLE}.csv").split()
    return [*targets, str(results / "smoke" / run_dir / "final.json")], overlay, run_dir


def snakemake(args: list[str], results: Path, targets: list[str], overlay: Path) -> str:
    cmd = [sys.executable, "-m", "snakemake", *targets, *args, "--configfile", str(overlay),
           "--config", "tier=smoke", f"results={results}/{{tier}}"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    out = r.stdout + r.stderr
    (results / "snakemake.log").write_text(out)
    assert r.returncode == 0, f"{' '.join(cmd)} failed (log: {results}/snakemake.log):\n{out[-4000:]}"
    return out


class Interrupter(threading.Thread):
    """Interrupts two running SLURM jobs the way a cluster does.

    The first behaviour job is requeued, as preemption does on clusters that requeue preempted
    jobs (then made eligible at once: SLURM holds a requeued job back for two minutes). The
    training job, once it has written a checkpoint, gets SIGTERM in all its processes, as a
    killed job does; Snakemake must resubmit it with more time and it must resume.
    (`scancel` without --signal is no stand-in: the SLURM plugin 2.8 never notices a job in
    state "CANCELLED by <uid>" and waits for it forever.)"""

    def __init__(self, results: Path, run_dir: str, slurm_logdir: Path):
        super().__init__(daemon=True)
        env, quality, algo, seed = Path(run_dir).relative_to("runs").parts
        self.train_comment = f"rule_train_wildcards_{env}_{quality}_{algo}_{seed.removeprefix('seed')}"
        self.ckpt, self.slurm_logdir = results / "smoke" / run_dir / "ckpt.pt", slurm_logdir
        self.done, self.stop = {}, threading.Event()

    def ours(self, job_id: str) -> bool:
        """Only jobs of this test's run (their SLURM log is in its folder), never anyone else's."""
        return f"StdOut={self.slurm_logdir}/" in _sh("scontrol", "show", "job", "-o", job_id).stdout

    def run(self):
        while not self.stop.is_set() and len(self.done) < 2:
            q = _sh("squeue", "-h", "--me", "--states=RUNNING", "-o", "%i|%k")
            for line in q.stdout.splitlines():
                job_id, comment = line.split("|", 1)
                rule = comment.removeprefix("rule_").split("_wildcards_")[0]
                if rule in self.done or not (rule == "behavior" or comment == self.train_comment):
                    continue
                if not self.ours(job_id):
                    continue
                if rule == "behavior":
                    if _sh("scontrol", "requeue", job_id).returncode == 0:
                        _sh("scontrol", "update", f"JobId={job_id}", "StartTime=now")
                        self.done[rule] = job_id
                elif self.ckpt.exists():
                    if _sh("scancel", "--full", "--signal=TERM", job_id).returncode == 0:
                        self.done[rule] = job_id
            time.sleep(0.2)


def sacct_records(since: str) -> list[Record]:
    """SLURM's accounting records since `since`, every run of a requeued job included (-D)."""
    fields = "JobID,Comment,State,TimelimitRaw,WorkDir,SubmitLine"
    r = _sh("sacct", "-X", "-D", "-P", "-n", "-S", since, "-o", fields)
    assert r.returncode == 0, r.stderr
    out = []
    for line in r.stdout.splitlines():
        job_id, comment, state, limit, workdir, submit = line.split("|", 5)
        out.append(Record(job_id, comment, state.split()[0], int(limit), workdir, submit))
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory, base_config):
    problem = cluster_problem()
    if problem:
        (pytest.fail if REQUIRE else pytest.skip)(problem)
    base = tmp_path_factory.mktemp("slurm")
    local, cluster = base / "local", base / "slurm"
    local.mkdir(), cluster.mkdir()
    overlay_path = base / "overlay.yaml"
    targets_local, overlay, run_dir = smoke_targets(local, base_config)
    overlay_path.write_text(yaml.safe_dump(overlay))

    local_run = Run(local, snakemake(["--cores", "2"], local, targets_local, overlay_path), run_dir)

    since = datetime.now().strftime("%Y-%m-%dT%H:%M:%S")
    interrupter = Interrupter(cluster, run_dir, cluster / "slurm_logs")
    interrupter.start()
    try:
        targets_cluster, _, _ = smoke_targets(cluster, base_config)
        out = snakemake(["--profile", "slurm", "--slurm-logdir", str(cluster / "slurm_logs"),
                         "--slurm-keep-successful-logs"], cluster, targets_cluster, overlay_path)
    finally:
        interrupter.stop.set()
        interrupter.join()
    records = [r for r in sacct_records(since) if r.workdir == str(ROOT)]
    return local_run, Run(cluster, out, run_dir, records, dict(interrupter.done))


# ---- what Snakemake says it did ------------------------------------------------------------------

JOB_BLOCK = re.compile(r"^(local)?rule (\w+):\n((?:    .*\n)*)", re.M)
# a failed job's log, printed by `show-failed-logs` (profiles/default): a SLURM job's log holds the
# remote Snakemake's own "localrule <rule>:" block, which is not a job of this run
PRINTED_LOG = re.compile(r"^Logfile .*:\n={80}\n.*?^={80}\n", re.M | re.S)


def jobs_in_log(stdout: str) -> tuple[set[str], set[str]]:
    """(comments SLURM should carry for the remote jobs, names of rules run locally)."""
    remote, local = set(), set()
    for m in JOB_BLOCK.finditer(PRINTED_LOG.sub("", stdout)):
        is_local, rule, body = m.group(1), m.group(2), m.group(3)
        if is_local:
            local.add(rule)
            continue
        wc = re.search(r"^    wildcards: (.*)$", body, re.M)
        values = [kv.split("=", 1)[1] for kv in wc.group(1).split(", ")] if wc else []
        remote.add(f"rule_{rule}_wildcards_{'_'.join(values)}" if values else f"rule_{rule}")
    return remote, local


def test_heavy_jobs_went_through_sbatch_and_light_jobs_stayed_local(runs):
    _, slurm = runs
    remote, local = jobs_in_log(slurm.stdout)
    remote_rules = {c.removeprefix("rule_").split("_wildcards_")[0] for c in remote}
    assert remote_rules == HEAVY, f"SLURM jobs by rule: {sorted(remote_rules)}; expected {sorted(HEAVY)}"
    assert "mask" in local and not local & HEAVY, f"local rules: {sorted(local)}"

    completed = {r.comment for r in slurm.records if r.state == "COMPLETED"}
    assert completed == remote, (f"in sacct but not run by snakemake: {sorted(completed - remote)}; "
                                 f"run by snakemake, no completed SLURM record: {sorted(remote - completed)}")
    for r in slurm.records:
        assert r.submit_line.startswith("sbatch "), f"job {r.job_id} ({r.comment}) was not submitted by sbatch: {r.submit_line!r}"
    assert not any(r.comment.startswith(f"rule_{rule}_") for r in slurm.records for rule in local), \
        "a local rule was also submitted to SLURM"


def _time_asked(record: Record) -> int:
    return int(re.search(r" -t '?(\d+)", record.submit_line).group(1))


def test_preempted_job_is_requeued_and_killed_training_retried_with_more_time_resuming(runs):
    _, slurm = runs
    assert set(slurm.interrupted) == {"behavior", "train"}, \
        f"the test could not interrupt both jobs (did: {slurm.interrupted}); see {slurm.results}/snakemake.log"

    requeued = [r for r in slurm.records if r.job_id == slurm.interrupted["behavior"]]
    assert [r.state for r in requeued] == ["REQUEUED", "COMPLETED"], requeued

    killed = next(r for r in slurm.records if r.job_id == slurm.interrupted["train"])
    assert killed.state == "FAILED"
    retries = [r for r in slurm.records if r.comment == killed.comment and int(r.job_id) > int(killed.job_id)]
    assert [r.state for r in retries] == ["COMPLETED"], f"{killed.comment}: retries {retries}"
    assert _time_asked(retries[0]) == 2 * _time_asked(killed), \
        f"the retry asked for {retries[0].submit_line!r} after {killed.submit_line!r}"
    assert retries[0].timelimit_min == 2 * killed.timelimit_min
    log = (slurm.results / "smoke" / "logs" / "train" / Path(slurm.run_dir).relative_to("runs")).with_suffix(".log")
    assert "resuming from" in log.read_text(), f"the retried training job started over instead of resuming ({log})"


# ---- same numbers as a local run -------------------------------------------------------------------

def _h5_checksums(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.glob("smoke/datasets/**/*.h5")):
        with h5py.File(p, "r") as f:
            out[str(p.relative_to(root))] = f.attrs["checksum"]
    return out


VOLATILE = {"wall_s", "env_steps_per_s", "updates_per_s", "versions"}   # timings differ run to run


def _stable_json(path: Path) -> dict:
    return {k: v for k, v in json.loads(path.read_text()).items() if k not in VOLATILE}


def _metrics(path: Path) -> list[dict]:
    with open(path) as f:
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(f)]


def test_outputs_equal_a_local_run(runs):
    local, slurm = runs
    local_sums, slurm_sums = _h5_checksums(local.results), _h5_checksums(slurm.results)
    assert local_sums and slurm_sums == local_sums

    summaries = sorted(p.relative_to(local.results) for p in local.results.glob("smoke/behavior/*/seed*/summary.json"))
    assert summaries
    for rel in summaries:
        assert _stable_json(slurm.results / rel) == _stable_json(local.results / rel), rel

    runs_done = sorted(p.parent.relative_to(local.results) for p in local.results.glob("smoke/runs/**/final.json"))
    assert Path("smoke") / slurm.run_dir in runs_done
    for run in runs_done:
        assert _stable_json(slurm.results / run / "final.json") == _stable_json(local.results / run / "final.json"), run
        assert _metrics(slurm.results / run / "metrics.csv") == _metrics(local.results / run / "metrics.csv"), run

    tables = sorted(p.relative_to(local.results) for p in local.results.glob("smoke/tables/*.csv"))
    assert tables
    for rel in tables:   # tables name their run folders: compare them relative to the results root
        assert ((slurm.results / rel).read_text().replace(str(slurm.results), "<results>")
                == (local.results / rel).read_text().replace(str(local.results), "<results>")), rel
