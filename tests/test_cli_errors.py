"""Wrong command-line input gets one message naming the argument (or file) and a fix, exit code 2,
no traceback: `python -m maccabench ...` and `python -m maccabench.aggregate ...` (issue 15 item 7).

In-process through the real `main` of each CLI (what `python -m` runs); one case in a real process
for the exit code. Every case fails before any data is read or model built, so the table is fast.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from maccabench import config as C
from maccabench import data
from maccabench.aggregate.__main__ import main as aggregate_main
from maccabench.cli import main as cli_main

CONFIG = str(ROOT / "config/config.yaml")


@pytest.fixture(scope="module")
def where(tmp_path_factory):
    """Paths the cases use: a plain file (to put an --out under), a missing path, a team dataset,
    an empty behaviour folder, and the JSON of a real training job whose inputs do not exist.
    Nothing is written by the cases (each fails first), so one folder serves the module."""
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "a_file").write_text("not a folder")
    cfg = C.load(CONFIG, {"tier": "smoke"})
    cfg["results"] = str(tmp / "results" / "{tier}")
    entry = C.env_entry(cfg, "cn")
    from maccabench.envs import spec_of
    T, N = 4, len(entry["team"])
    arrays = {k: np.zeros((T, N, 2), np.float32) for k in ("obs", "next_obs", "actions")}
    arrays.update({k: np.zeros((T, 3), np.float32) for k in ("state", "next_state")})
    arrays.update(terminals=np.zeros(T, bool), timeouts=np.zeros(T, bool), team_rewards=np.zeros(T, np.float32),
                  episode_starts=np.eye(1, T, dtype=bool)[0])
    data.write(tmp / "team.h5", arrays, spec_of(entry), "team", S_random=0.0, S_expert=1.0)
    (tmp / "behavior").mkdir()
    behavior_job, collect_job = C.behavior_job(cfg, "cn", 0), C.collect_job(cfg, "cn", "expert", 0)

    def without(job: dict, dotted: str) -> str:
        job = copy.deepcopy(job)
        *parents, last = dotted.split(".")
        part = job
        for p in parents:
            part = part[p]
        del part[last]
        return json.dumps(job)
    return {"file": str(tmp / "a_file"), "missing": str(tmp / "missing"), "team": str(tmp / "team.h5"),
            "behavior": str(tmp / "behavior"), "job": C.train_job(cfg, "cn", "expert", "omar", 0).to_json(),
            "tmp": str(tmp),
            "behavior_job_no_env_steps": without(behavior_job, "env_steps"),
            "behavior_job_no_num_envs": without(behavior_job, "behavior.num_envs"),
            "behavior_job_env_no_suite": without(behavior_job, "env.suite"),
            "collect_job_no_noise": without(collect_job, "noise"),
            "collect_job_no_quality": without(collect_job, "quality"),
            "collect_job_env_no_team": without(collect_job, "env.team")}


TRAIN = ["train", "--env", "cn", "--quality", "expert", "--algo", "omar", "--no-progress"]
COLLECT = ["collect", "--env", "cn", "--quality", "expert", "--config", CONFIG, "--tier", "smoke"]

# (id, argv with {placeholders} from `where`, the argument or file the message must name, text it must contain)
CASES = [
    ("behavior-negative-seed", ["behavior", "--env", "cn", "--seed", "-1", "--out", "{tmp}/b"], "--seed", ">= 0"),
    ("train-negative-seed", TRAIN + ["--seed", "-2"], "--seed", ">= 0"),
    ("collect-seed-not-a-number", COLLECT + ["--seed", "one", "--behavior", "{behavior}", "--out", "{tmp}/c.h5"],
     "--seed", ">= 0"),
    ("train-zero-threads", TRAIN + ["--threads", "0"], "--threads", "1 or more"),
    ("behavior-out-under-a-file", ["behavior", "--env", "cn", "--config", CONFIG, "--tier", "smoke",
                                   "--out", "{file}/b"], "--out", "which is a file"),
    ("behavior-out-is-a-file", ["behavior", "--env", "cn", "--config", CONFIG, "--out", "{file}"], "--out",
     "not a folder"),
    ("behavior-job-not-json", ["behavior", "--env", "cn", "--job", "{{seed: 0", "--out", "{tmp}/b"], "--job",
     "not valid JSON"),
    ("behavior-job-negative-seed", ["behavior", "--env", "cn", "--job", '{{"seed": -1}}', "--out", "{tmp}/b"],
     "--job", ">= 0"),
    # a --job that lacks a key its stage reads (the behaviour and collection jobs are plain dicts)
    ("behavior-job-missing-key", ["behavior", "--env", "cn", "--job", "{behavior_job_no_env_steps}", "--out", "{tmp}/b"],
     "--job.env_steps", "is missing"),
    ("behavior-job-missing-hyperparameter", ["behavior", "--env", "cn", "--job", "{behavior_job_no_num_envs}",
                                             "--out", "{tmp}/b"], "--job.behavior.num_envs", "config.behavior_job"),
    ("behavior-job-env-missing-suite", ["behavior", "--env", "cn", "--job", "{behavior_job_env_no_suite}",
                                        "--out", "{tmp}/b"], "--job.env.suite", "is missing"),
    ("collect-job-missing-key", COLLECT + ["--job", "{collect_job_no_noise}", "--behavior", "{behavior}",
                                           "--out", "{tmp}/c.h5"], "--job.noise", "config.collect_job"),
    ("collect-job-missing-quality", COLLECT + ["--job", "{collect_job_no_quality}", "--behavior", "{behavior}",
                                               "--out", "{tmp}/c.h5"], "--job.quality", "is missing"),
    ("collect-job-env-missing-team", COLLECT + ["--job", "{collect_job_env_no_team}", "--behavior", "{behavior}",
                                                "--out", "{tmp}/c.h5"], "--job.env.team", "is missing"),
    ("collect-behavior-missing", COLLECT + ["--behavior", "{missing}", "--out", "{tmp}/c.h5"], "--behavior",
     "does not exist"),
    ("collect-behavior-without-policies", COLLECT + ["--behavior", "{behavior}", "--out", "{tmp}/c.h5"],
     "--behavior", "summary.json"),
    ("collect-out-under-a-file", COLLECT + ["--behavior", "{behavior}", "--out", "{file}/c.h5"], "--out",
     "which is a file"),
    ("collect-job-not-an-object", COLLECT + ["--job", "[1]", "--behavior", "{behavior}", "--out", "{tmp}/c.h5"],
     "--job", "not an object"),
    ("mask-team-file", ["mask", "--raw", "{team}", "--out", "{tmp}/m.h5"], "{team}", "datasets/raw/"),
    ("mask-out-is-a-folder", ["mask", "--raw", "{team}", "--out", "{tmp}"], "--out", "is a folder"),
    ("train-job-not-json", TRAIN + ["--job", "{{", "--out", "{tmp}/r"], "--job", "not valid JSON"),
    ("train-job-behavior-missing", TRAIN + ["--job", "{job}", "--out", "{tmp}/r"], "--job", "policies.pt"),
    ("train-out-under-a-file", TRAIN + ["--job", "{job}", "--out", "{file}/r"], "--out", "which is a file"),
    ("recovery-run-missing", ["recovery", "--run", "{missing}", "--raw", "{team}", "--out", "{tmp}/r.json"],
     "--run", "does not exist"),
    ("recovery-run-not-finished", ["recovery", "--run", "{behavior}", "--raw", "{team}", "--out", "{tmp}/r.json"],
     "--run", "config.yaml"),
    ("datasets-summary-missing", ["datasets-summary", "{missing}"], "results", "does not exist"),
    ("check-config-missing", ["check-config", "--config", "{missing}"], "--config", "does not exist"),
]

AGGREGATE = [
    ("table-job-not-json", ["table", "--job", "{{", "--out", "{tmp}/t"], "--job", "not valid JSON"),
    ("table-without-name", ["table", "--config", CONFIG, "--tier", "smoke", "--out", "{tmp}/t"], "--name", "table1"),
    ("table-out-is-a-file", ["table", "--config", CONFIG, "--name", "table1", "--out", "{file}"], "--out",
     "not a folder"),
    ("curves-out-under-a-file", ["curves", "--config", CONFIG, "--name", "table1", "--out", "{file}/c.png"],
     "--out", "which is a file"),
    ("vs-paper-no-table-yet", ["vs-paper", "--config", CONFIG, "--name", "table1", "--out", "{tmp}/t"], "--csv",
     "table --name table1"),
    ("masks-job-unknown-key", ["masks", "--job", '{{"a": 1}}', "--out", "{tmp}/m.png"], "--job", "'a'"),
    ("timing-zero-cores", ["timing", "--cores", "0"], "--cores", "1 or more"),
]


def _run(main, argv, capsys):
    try:
        main(argv)
    except SystemExit as e:
        code = e.code
    except Exception as e:   # what a user would see as a traceback
        pytest.fail(f"traceback instead of a message: {type(e).__name__}: {e}")
    else:
        pytest.fail("the command accepted the wrong input")
    return code, capsys.readouterr().err


@pytest.mark.parametrize("main,case,argv,names,also",
                         [pytest.param(cli_main, *c, id=c[0]) for c in CASES]
                         + [pytest.param(aggregate_main, *c, id=f"aggregate-{c[0]}") for c in AGGREGATE])
def test_wrong_argument_gets_a_message(main, case, argv, names, also, where, capsys):
    code, err = _run(main, [a.format(**where) for a in argv], capsys)
    assert code == 2, err
    assert "Traceback" not in err
    assert names.format(**where) in err, f"message does not name {names}: {err}"
    assert "Fix:" in err, err
    assert also in err, f"message lacks {also!r}: {err}"
    # one message (argparse's own errors come after its usage lines)
    assert len([line for line in err.splitlines() if "error:" in line]) == 1, err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only folder")
def test_read_only_out_folder(where, tmp_path, capsys):
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, err = _run(cli_main, ["mask", "--raw", where["team"], "--out", str(folder / "m.h5")], capsys)
    finally:
        folder.chmod(0o755)
    assert code == 2 and "--out" in err and "not writable" in err, err


def test_out_is_checked_before_the_job_inputs(where, capsys):
    """A bad --out is reported first, although the job's behaviour policies are missing too."""
    _, err = _run(cli_main, TRAIN + ["--job", where["job"], "--out", where["file"] + "/r"], capsys)
    assert "--out" in err and "policies.pt" not in err, err


def test_exit_code_in_a_real_process(where):
    r = subprocess.run([sys.executable, "-m", "maccabench", "mask", "--raw", where["team"], "--out",
                        where["tmp"] + "/m.h5"], capture_output=True, text=True, cwd=ROOT, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "datasets/raw/" in r.stderr and "Fix:" in r.stderr, r.stderr


def test_stage_job_keys_are_the_keys_config_writes():
    """jobs.STAGE_JOB_KEYS (what `--job` is checked against) is what config.behavior_job and
    config.collect_job build, so the check neither misses a key nor asks for one that is gone."""
    from maccabench.jobs import STAGE_JOB_KEYS
    cfg = C.load(CONFIG, {"tier": "smoke"})
    assert set(STAGE_JOB_KEYS["behavior"]) == set(C.behavior_job(cfg, "cn", 0))
    assert set(STAGE_JOB_KEYS["collect"]) == set(C.collect_job(cfg, "cn", "expert", 0))
