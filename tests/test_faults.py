"""Fault injection through the real CLI and Snakemake (issue 15): reruns after every kind of
upstream change, kills during training, and corrupted or truncated files at every stage that
reads them. One small smoke results tree (CN: behaviour, expert and medium-replay datasets, runs
of omar and macca-omar, macca-omar's reward recovery) is built once; a test that mutates it works
on a copy with the same mtimes."""
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from maccabench import config as C
from maccabench import layout
from maccabench.aggregate import spec as tables_spec

from conftest import ROOT, snakemake
from test_pipeline_datasets import kill_behaviour_and_resume

pytestmark = pytest.mark.slow   # about 6 minutes on one core: Snakemake, torch imports, ~30 CLI runs

BEHAVIOR = "behavior/cn/seed0"
RAW, TEAM = "datasets/raw/cn/expert/seed0.h5", "datasets/team/cn/expert/seed0.h5"
REPLAY_TEAM = "datasets/team/cn/medium-replay/seed0.h5"
OMAR, MACCA = "runs/cn/expert/omar/seed0", "runs/cn/expert/macca-omar/seed0"
RUNS = (OMAR, MACCA)


def targets(root: Path) -> list[str]:
    return [str(root / f) for f in (f"{BEHAVIOR}/summary.json", RAW, TEAM, REPLAY_TEAM,
                                    f"{OMAR}/{layout.FINAL}", f"{MACCA}/{layout.FINAL}")]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("faults")
    root = results / "smoke"
    r = snakemake(*targets(root), str(root / MACCA / layout.RECOVERY), results=results)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return root


@pytest.fixture
def work(tree, tmp_path) -> Path:
    """A copy of the tree (copytree keeps mtimes, so Snakemake sees it as up to date)."""
    shutil.copytree(tree, tmp_path / "smoke")
    return tmp_path / "smoke"


def cli(*args, module="maccabench"):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def cfg_for(root: Path) -> dict:
    return C.load(ROOT / "config/config.yaml", {"tier": "smoke", "results": str(root.parent / "{tier}")})


def assert_same_run(a: Path, b: Path) -> None:
    """metrics.csv and final.json equal apart from wall time (and masks.npz where there is one)."""
    import numpy as np
    pd.testing.assert_frame_equal(*(pd.read_csv(d / layout.METRICS).drop(columns="wall_s") for d in (a, b)))
    fa, fb = ({k: v for k, v in json.loads((d / layout.FINAL).read_text()).items() if k != "wall_s"} for d in (a, b))
    assert fa == fb
    if (a / layout.MASKS).exists():
        with np.load(a / layout.MASKS) as za, np.load(b / layout.MASKS) as zb:
            assert za.files == zb.files and all(np.array_equal(za[k], zb[k]) for k in za.files)


# ---- 1. reruns after upstream changes, through Snakemake -------------------------------------

def _regenerate(root, path):
    target = root / path
    shutil.rmtree(target) if target.is_dir() else target.unlink()


RERUNS = {
    "team dataset regenerated": (lambda root: _regenerate(root, TEAM), []),
    "team dataset touched": (lambda root: (root / TEAM).touch(), []),
    "forcerun train": (lambda root: None, ["--forcerun=train"]),
    "raw dataset regenerated": (lambda root: _regenerate(root, RAW), []),
    "behaviour folder regenerated": (lambda root: _regenerate(root, BEHAVIOR), []),
}


@pytest.mark.parametrize("case", list(RERUNS))
def test_rerun_after_upstream_change_ends_as_the_uninterrupted_run(case, tree, work):
    change, extra = RERUNS[case]
    change(work)
    r = snakemake(*targets(work), *extra, results=work.parent)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    import h5py
    with h5py.File(tree / TEAM) as a, h5py.File(work / TEAM) as b:   # deterministic regeneration
        assert a.attrs["checksum"] == b.attrs["checksum"]
    for run in RUNS:
        assert_same_run(tree / run, work / run)
        assert not list((work / run).glob(".*.partial"))
    # macca-omar was retrained (its recovery was not asked for): no recovery of the old run remains
    assert not (work / MACCA / layout.RECOVERY).exists()


def test_untouched_copy_is_up_to_date(work):
    r = snakemake(*targets(work), "--dry-run", results=work.parent)
    assert r.returncode == 0 and "Nothing to be done" in r.stdout + r.stderr, r.stdout[-2000:]


def test_changed_hyperparameter_retrains(tree, work, tmp_path):
    """A changed hyper-parameter retrains the run. Snakemake sees a params change through the metadata
    it records when it runs a job (a copied tree has none), so the run is first trained here once."""
    target = str(work / OMAR / layout.FINAL)
    first = snakemake(target, "--forcerun=train", results=work.parent)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    extra = tmp_path / "extra.yaml"
    extra.write_text("backbones:\n  omar:\n    actor_l2: 0.5\n")
    r = snakemake(target, "--configfile", str(ROOT / "config/config.yaml"), str(extra), results=work.parent)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    recorded = yaml.safe_load((work / OMAR / layout.RUN_CONFIG).read_text())
    assert recorded["backbone_hp"]["actor_l2"] == 0.5
    old, new = (pd.read_csv(d / OMAR / layout.METRICS) for d in (tree, work))
    losses = [c for c in old.columns if c.startswith("losses/")]
    assert not old[losses].iloc[1:].equals(new[losses].iloc[1:])   # trained again, on the new value


# ---- 2. kills during training ----------------------------------------------------------------

def _long_job(root: Path) -> str:
    """macca-omar (it writes masks.npz) with enough evaluations to kill between them."""
    d = C.train_job(cfg_for(root), "cn", "expert", "macca-omar", 0).to_dict()
    d["updates"], d["eval_every"] = 60, 10   # evaluations at 0, 10, ..., 60
    return json.dumps(d)


def _train_cmd(job: str, out: Path) -> list[str]:
    return [sys.executable, "-m", "maccabench", "train", "--env", "cn", "--quality", "expert", "--algo", "macca-omar",
            "--seed", "0", "--job", job, "--out", str(out), "--threads", "1", "--no-progress"]


def _rows(out: Path) -> int:
    try:
        return max(len((out / layout.METRICS).read_text().splitlines()) - 1, 0)
    except FileNotFoundError:
        return 0


@pytest.fixture(scope="module")
def long_run(tree, tmp_path_factory) -> tuple[str, Path]:
    """(job, folder) of the uninterrupted long run that every kill point is compared with."""
    job, out = _long_job(tree), tmp_path_factory.mktemp("long") / "whole"
    subprocess.run(_train_cmd(job, out), cwd=ROOT, check=True, capture_output=True)
    return job, out


@pytest.mark.parametrize("when", ["first evaluation", "middle evaluation", "last evaluation", "while writing"])
def test_killed_training_resumes_to_the_uninterrupted_run(when, long_run, tmp_path):
    job, base = long_run
    out = tmp_path / "run"
    stop = {"first evaluation": lambda: _rows(out) >= 1, "middle evaluation": lambda: _rows(out) >= 4,
            "last evaluation": lambda: _rows(out) >= 7,
            "while writing": lambda: _rows(out) >= 2 and any(out.glob(".*.partial"))}[when]
    p = subprocess.Popen(_train_cmd(job, out), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not stop() and p.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL)
    p.wait()
    r = subprocess.run(_train_cmd(job, out), cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert_same_run(base, out)
    assert not list(out.glob(".*.partial"))


@pytest.mark.parametrize("resume_points", [2, 4])   # the first: test_pipeline_datasets
def test_killed_behaviour_learning_resumes_to_the_uninterrupted_run(resume_points, tmp_path, cfg):
    kill_behaviour_and_resume(tmp_path, cfg, resume_points)


# ---- 3. corrupted and truncated files, each read through the real CLI -------------------------

def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def garble(path: Path) -> None:
    path.write_bytes(b"\x00\xffnot what this file should hold\n" * 8)


DAMAGE = {"truncated": truncate, "garbled": garble}


def assert_named_error(r, path: Path, *unwritten: Path) -> None:
    """Exit 2 with a message naming the file and a fix, no traceback, nothing that looks finished."""
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-3000:])
    assert "Traceback" not in r.stderr and str(path) in r.stderr and "Fix:" in r.stderr, r.stderr[-3000:]
    for p in unwritten:
        assert not p.exists(), p


def _train_job_json(root: Path, algo: str = "omar") -> str:
    return C.train_job(cfg_for(root), "cn", "expert", algo, 0).to_json()


def _train(root: Path, out: Path, algo: str = "omar"):
    return cli("train", "--env", "cn", "--quality", "expert", "--algo", algo, "--job", _train_job_json(root, algo),
               "--out", out, "--threads", "1", "--no-progress")


def _collect(root: Path, quality: str, out: Path):
    job = json.dumps(C.collect_job(cfg_for(root), "cn", quality, 0))
    return cli("collect", "--env", "cn", "--quality", quality, "--job", job, "--behavior", root / BEHAVIOR, "--out", out)


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_inputs_are_named_by_every_reader(damage, work, tmp_path):
    """One damage at a time (restored after each), every stage that reads the file."""
    hurt = DAMAGE[damage]

    def damaged(rel):
        path = work / rel
        backup = tmp_path / "backup"
        shutil.copy2(path, backup)
        hurt(path)
        return path, lambda: shutil.copy2(backup, path)

    out = tmp_path / "out"
    path, restore = damaged(f"{BEHAVIOR}/policies.pt")
    assert_named_error(_collect(work, "expert", out / "raw.h5"), path, out / "raw.h5", out / "raw.stats.json")
    assert_named_error(_train(work, out / "run"), path, out / "run" / layout.FINAL)
    restore()
    path, restore = damaged(f"{BEHAVIOR}/replay_medium.npz")
    assert_named_error(_collect(work, "medium-replay", out / "raw.h5"), path, out / "raw.h5")
    restore()
    path, restore = damaged(RAW)
    assert_named_error(cli("mask", "--raw", path, "--out", out / "team.h5"), path, out / "team.h5")
    assert_named_error(cli("recovery", "--run", work / MACCA, "--raw", path, "--out", out / "rec.json"), path,
                       out / "rec.json")
    restore()
    path, restore = damaged(TEAM)
    assert_named_error(_train(work, out / "run"), path, out / "run" / layout.FINAL, out / "run" / layout.METRICS)
    restore()
    for name in (layout.CHECKPOINT, layout.RUN_CONFIG):   # recovery needs the run's model and job
        path, restore = damaged(f"{MACCA}/{name}")
        assert_named_error(cli("recovery", "--run", work / MACCA, "--raw", work / RAW, "--out", out / "rec.json"),
                           path, out / "rec.json")
        restore()


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_checkpoint_or_run_config_starts_over(damage, tree, work):
    """ckpt.pt is a cache and config.yaml a record every start rewrites: training says it starts
    over and ends as the uninterrupted run."""
    run = work / OMAR
    DAMAGE[damage](run / layout.CHECKPOINT)
    for name in (layout.FINAL, layout.METRICS):   # what Snakemake deletes before rerunning a job
        (run / name).unlink()
    r = _train(work, run)
    assert r.returncode == 0 and "starting over" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
    assert_same_run(tree / OMAR, run)
    DAMAGE[damage](run / layout.RUN_CONFIG)   # finished run, unreadable record of its job
    r = _train(work, run)
    assert r.returncode == 0 and f"{run / layout.RUN_CONFIG}: " in r.stdout and "running the job again" in r.stdout, \
        r.stdout[-2000:] + r.stderr[-2000:]
    assert_same_run(tree / OMAR, run)


def test_damaged_behaviour_resume_point_starts_over(tmp_path):
    cfg = C.load(ROOT / "config/config.yaml", {"tier": "smoke"})
    job = C.behavior_job(cfg, "cn", 0)
    job["env_steps"] = 1000
    out = tmp_path / "behavior"
    out.mkdir()
    garble(out / "resume.pt")
    r = cli("behavior", "--env", "cn", "--job", json.dumps(job), "--out", out, "--no-progress")
    assert r.returncode == 0 and "starting over" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
    assert (out / "summary.json").exists() and not (out / "resume.pt").exists()


def _table_job(root: Path) -> str:
    cfg = cfg_for(root)
    cfg["tiers"]["smoke"].update(envs=["cn"], qualities=["expert"], algos=["omar", "macca-omar"])
    cfg["tables"]["table1"].update(algos=["omar", "macca-omar"], improvement={"macca-omar": "omar"})
    return json.dumps(tables_spec.resolve(cfg, "table1").to_job())


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_run_files_are_named_by_tables_and_figures(damage, work, tmp_path):
    cfg = cfg_for(work)
    masks_job = json.dumps(tables_spec.masks_job(cfg) | {"seeds": [0]})
    table = ["table", "--job", _table_job(work), "--out", tmp_path / "tables"]
    curves = ["curves", "--job", _table_job(work), "--out", tmp_path / "curves.png"]
    masks = ["masks", "--job", masks_job, "--out", tmp_path / "masks.png"]
    r = cli(*table, module="maccabench.aggregate")
    assert r.returncode == 0, r.stderr[-3000:]   # the undamaged tree tabulates
    shutil.rmtree(tmp_path / "tables")
    for rel, commands in ((f"{OMAR}/{layout.FINAL}", (table, curves)), (f"{OMAR}/{layout.METRICS}", (curves,)),
                          (f"{MACCA}/{layout.MASKS}", (masks,))):
        path = work / rel
        backup = tmp_path / "backup"
        shutil.copy2(path, backup)
        DAMAGE[damage](path)
        for args in commands:
            r = cli(*args, module="maccabench.aggregate")
            assert_named_error(r, path, tmp_path / "tables" / "table1.csv", tmp_path / "curves.png",
                               tmp_path / "masks.png")
        shutil.copy2(backup, path)
