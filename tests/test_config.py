"""Bad configuration is rejected before any job starts, naming the field and the fix."""
import subprocess
import sys

import pytest
import yaml

from maccabench import config as C
from maccabench.errors import ConfigError

from conftest import ROOT


def test_project_config_is_valid(cfg):
    assert C.check(cfg) is cfg


@pytest.mark.parametrize("mutate, field, words", [
    (lambda c: c.update(tier="fast"), "tier", "use one of smoke, quick, paper"),
    (lambda c: c["tiers"]["quick"]["envs"].append("hopper"), "tiers.quick.envs[3]", "unknown env 'hopper'"),
    (lambda c: c["environments"]["cn"].update(suite="mujoco"), "environments.cn.suite", "unknown suite 'mujoco'"),
    (lambda c: c["environments"]["cn"].update(task="simple_sprad_v3"), "environments.cn.task", "unknown task"),
    (lambda c: c["tiers"]["smoke"]["qualities"].append("superb"), "tiers.smoke.qualities.4", "'superb' is not allowed"),
    (lambda c: c["environments"]["pp"].pop("team"), "environments.pp.team", "is missing"),
    (lambda c: c["tiers"]["quick"].update(dataset_transitions="100k"), "tiers.quick.dataset_transitions",
     "must be of type integer"),
    (lambda c: c["behavior"].update(batchsize=256), "behavior.batchsize", "not a known field"),
    (lambda c: c["environments"]["pp"].update(team=["adversary_0", "predator_7"]), "environments.pp.team",
     "names agents the task does not have: predator_7"),
    (lambda c: c["environments"]["pp"].update(others="none"), "environments.pp.others", "need a policy"),
])
def test_bad_config_names_field_and_fix(cfg, mutate, field, words):
    mutate(cfg)
    with pytest.raises(ConfigError) as e:
        C.check(cfg)
    assert e.value.field == field
    assert words in str(e.value)
    assert "Fix:" in str(e.value)


def test_exponent_without_decimal_point_is_explained(cfg):
    """PyYAML reads `1e-7` as text; the error says so instead of a puzzling type complaint."""
    cfg["causal"]["lambda1"]["random"] = "1e-7"
    with pytest.raises(ConfigError, match=r"YAML reads 1e-7 as text.*write 1\.0e-07"):
        C.check(cfg)


def test_unknown_quality_in_a_job_is_rejected(cfg):
    with pytest.raises(ConfigError, match="unknown quality 'great'"):
        C.collect_job(cfg, "cn", "great", 0)


def test_snakemake_rejects_bad_config_before_any_job(tmp_path):
    """A typo on the command line stops the whole workflow at parse time, naming the field."""
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--config", "tier=quik"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0
    assert "config field `tier`: 'quik' is not allowed" in r.stdout + r.stderr
    assert "Fix: use one of smoke, quick, paper" in r.stdout + r.stderr


def test_cli_reports_config_errors_without_traceback(tmp_path, cfg):
    cfg["environments"]["world"]["team"] = ["leadadversary_0", "adversary_9"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    r = subprocess.run([sys.executable, "-m", "maccabench", "check-config", "--config", str(bad)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2
    assert "environments.world.team" in r.stderr and "adversary_9" in r.stderr and "Traceback" not in r.stderr
