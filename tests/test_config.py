"""Bad configuration is rejected before any job starts, naming the field and the fix."""
import copy
import subprocess
import sys

import pytest
import yaml

from maccabench import config as C
from maccabench.errors import ConfigError
from maccabench.jobs import TrainJob

from conftest import ROOT

TIERS = ", ".join(yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["tiers"])   # the error lists them


def test_project_config_is_valid(cfg):
    assert C.check(cfg) is cfg


@pytest.mark.parametrize("mutate, field, words", [
    (lambda c: c.update(tier="fast"), "tier", "use one of " + TIERS),
    (lambda c: c["tiers"]["quick"]["envs"].append("hopper"), "tiers.quick.envs[2]", "unknown env 'hopper'"),
    (lambda c: c["environments"]["cn"].update(suite="mujoco"), "environments.cn.suite", "unknown suite 'mujoco'"),
    (lambda c: c["environments"]["cn"].update(task="simple_sprad_v3"), "environments.cn.task", "unknown task"),
    (lambda c: c["tiers"]["smoke"]["qualities"].insert(0, "superb"), "tiers.smoke.qualities.0", "'superb' is not allowed"),
    (lambda c: c["environments"]["pp"].pop("team"), "environments.pp.team", "is missing"),
    (lambda c: c["tiers"]["quick"].update(dataset_transitions="100k"), "tiers.quick.dataset_transitions",
     "must be of type integer"),
    (lambda c: c["behavior"].update(batchsize=256), "behavior.batchsize", "not a known field"),
    (lambda c: c["environments"]["pp"].update(team=["adversary_0", "predator_7"]), "environments.pp.team",
     "names agents the task does not have: predator_7"),
    (lambda c: c["environments"]["pp"].update(others="none"), "environments.pp.others", "need a policy"),
    # issue 15 item 5
    (lambda c: c["causal"]["lambda1"].pop("random"), "causal.lambda1", "has no value for random"),
    (lambda c: c["algorithms"]["macca-omar-full"]["reward_options"].update(graph="fulll"),
     "algorithms.macca-omar-full.reward_options.graph", "use one of dynamic, fixed, full"),
    (lambda c: c["algorithms"]["omar"].update(reward_options={"h": 0.05}), "algorithms.omar.reward_options",
     "reward assigner 'team' takes no options"),
    (lambda c: c["backbones"]["omar"]["omar_tau"].update(expret=c["backbones"]["omar"]["omar_tau"].pop("expert")),
     "backbones.omar.omar_tau.expret", "expert, medium, medium-replay, random"),
    (lambda c: c["causal"]["lambda2"].update(Expert=1.0), "causal.lambda2.Expert", "expert, medium, medium-replay, random"),
    (lambda c: c["environments"]["cn"].setdefault("task_args", {}).update(num_landmarks=3), "environments.cn.task_args.num_landmarks",
     "not an argument of this task"),
    (lambda c: c["environments"]["pp"].setdefault("task_args", {}).update(num_adversaries=2.5), "environments.pp.task_args.num_adversaries",
     "must be int"),
    (lambda c: c["causal"].pop("h"), "causal.h", "is missing"),
    (lambda c: c["training"]["common"].update(cql_alpha=1.0), "training.common.cql_alpha", "not a hyper-parameter"),
    # issue 15 item 6: tables name algorithms, envs and tables that exist
    (lambda c: c["tables"]["table1"]["algos"].append("macca-omr"), "tables.table1.algos", "macca-omr"),
    (lambda c: c["tables"]["table7"]["rows"].update({"0.2": "macca-omar-h0p2"}), "tables.table7.rows.0.2", "macca-omar-h0p2"),
    (lambda c: c["tables"]["table6"].update(env="cm"), "tables.table6.env", "unknown env 'cm'"),
    (lambda c: c["tables"]["figures"]["curves"].append("tabel1"), "tables.figures.curves[11]", "unknown table 'tabel1'"),
    (lambda c: c["tables"]["figures"]["masks"].update(algo="macca"), "tables.figures.masks.algo", "macca"),
    (lambda c: c["tiers"]["quick"].update(tables=["table1", "tabel9"]), "tiers.quick.tables[1]", "unknown table 'tabel9'"),
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
    with pytest.raises(ConfigError, match=r"YAML reads 1e-7 as text.*write 1\.0e-7"):
        C.check(cfg)


def test_validating_the_config_imports_no_torch_and_no_suite():
    """What every Snakemake parse runs: it must not pay for (or need) torch, mpe2 or numpy."""
    code = ("import sys; from maccabench import config as C; C.load('config/config.yaml'); "
            "C.train_job(C.load('config/config.yaml', {'tier': 'smoke'}), 'cn', 'expert', 'macca-omar', 0); "
            "print(sorted(m for m in ('torch', 'mpe2', 'numpy', 'pettingzoo') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_a_train_job_round_trips_through_the_rules_json(cfg):
    cfg["tier"] = "smoke"
    job = C.train_job(cfg, "pp", "random", "macca-omar-h0p05", 3)
    again = TrainJob.from_json(job.to_json())
    assert again == job and again.to_dict() == job.to_dict()
    assert again.rewards_config.h == 0.05 and again.rewards_config.lambda1 == 1.0e-7   # Table 4, random
    assert again.backbone_config.omar_tau == 0.99 and again.raw_dataset is None


@pytest.mark.parametrize("text, field", [
    ("{not json", "--job"),
    ('["a", "list"]', "--job"),
])
def test_a_malformed_job_json_is_named(text, field):
    with pytest.raises(ConfigError) as e:
        TrainJob.from_json(text)
    assert e.value.field == field


def test_a_job_with_an_unknown_or_missing_key_is_named(cfg):
    cfg["tier"] = "smoke"
    d = C.train_job(cfg, "cn", "expert", "omar", 0).to_dict()
    with pytest.raises(ConfigError, match="--job.updatez"):
        TrainJob.from_dict({**d, "updatez": 3})
    del d["behavior"]
    with pytest.raises(ConfigError, match="--job.behavior"):
        TrainJob.from_dict(d)


def test_unknown_quality_in_a_job_is_rejected(cfg):
    with pytest.raises(ConfigError, match="unknown quality 'great'"):
        C.collect_job(cfg, "cn", "great", 0)


def test_snakemake_rejects_bad_config_before_any_job(tmp_path):
    """A typo on the command line stops the whole workflow at parse time, naming the field."""
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--config", "tier=quik"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0
    assert "config field `tier`: 'quik' is not allowed" in r.stdout + r.stderr
    assert "Fix: use one of " + TIERS in r.stdout + r.stderr


def test_cli_reports_config_errors_without_traceback(tmp_path, cfg):
    cfg["environments"]["world"]["team"] = ["leadadversary_0", "adversary_9"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    r = subprocess.run([sys.executable, "-m", "maccabench", "check-config", "--config", str(bad)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2
    assert "environments.world.team" in r.stderr and "adversary_9" in r.stderr and "Traceback" not in r.stderr


# ---- tiers: names and resources come from the config's `tiers:` section ---------------------

def _with_tier_copy(cfg: dict, name: str, **resources) -> dict:
    """The project config plus `name`, a copy of the smoke tier with some resources changed."""
    cfg["tiers"][name] = copy.deepcopy(cfg["tiers"]["smoke"])
    for rule, values in resources.items():
        cfg["tiers"][name]["resources"][rule].update(values)
    return cfg


def test_a_new_tier_is_one_config_entry(cfg):
    _with_tier_copy(cfg, "tiny")
    cfg["tier"] = "tiny"
    assert C.tier(C.check(cfg)) == cfg["tiers"]["smoke"]
    cfg["tier"] = "huge"
    with pytest.raises(ConfigError, match="use one of " + ", ".join(cfg["tiers"])) as e:
        C.check(cfg)
    assert e.value.field == "tier"


def test_a_tier_without_resources_is_rejected(cfg):
    del cfg["tiers"]["paper"]["resources"]
    with pytest.raises(ConfigError, match="is missing") as e:
        C.check(cfg)
    assert e.value.field == "tiers.paper.resources"


def test_clis_accept_the_tiers_the_config_defines(tmp_path, cfg):
    """No hard-coded tier choices: both CLIs take a tier defined only in the config file given,
    and reject an unknown one listing the config's tiers."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_with_tier_copy(cfg, "tiny"), sort_keys=False))
    ok = subprocess.run([sys.executable, "-m", "maccabench", "check-config", "--config", str(path), "--tier", "tiny"],
                        cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "tier=tiny" in ok.stdout
    for cli in (["maccabench", "check-config"], ["maccabench.aggregate", "status"]):
        bad = subprocess.run([sys.executable, "-m", *cli, "--config", str(path), "--tier", "huge"],
                             cwd=ROOT, capture_output=True, text=True)
        assert bad.returncode == 2, bad.stderr
        assert "config field `tier`: 'huge' is not allowed" in bad.stderr
        assert ", ".join(cfg["tiers"]) in bad.stderr and "Traceback" not in bad.stderr   # ..., tiny


def test_snakemake_runs_a_new_tier_with_its_own_resources(tmp_path, cfg):
    """A tier added by a config overlay dry-runs, and each job asks for the resources of that
    tier's entry (here train's runtime and gpu changed from smoke's)."""
    overlay = tmp_path / "overlay.yaml"
    tiny = _with_tier_copy(cfg, "tiny", train={"runtime": 7, "gpu": 2})["tiers"]["tiny"]
    overlay.write_text(yaml.safe_dump({"tiers": {"tiny": tiny}}))
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "runs", "--configfile", str(overlay),
                        "--config", "tier=tiny", f"results={tmp_path}/{{tier}}"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    train_jobs = r.stdout.split("rule train:")[1:]  # each starts with that job's block
    train_resources = [dict(kv.split("=", 1) for kv in job.split("resources:")[1].splitlines()[0].strip().split(", "))
                       for job in train_jobs]
    assert len(train_resources) == (len(tiny["envs"]) * len(tiny["qualities"]) * len(tiny["algos"])
                                    * len(tiny["train_seeds"]))
    assert all((res["runtime"], res["gpu"], res["mem_mb"]) == ("7", "2", "1500") for res in train_resources)
    assert f"{tmp_path}/tiny/runs/cn/expert/icql/seed0/final.json" in r.stdout


# ---- layered hyper-parameters and seed pairing (issue 14 items 4, 5) ------------------------------

def test_a_task_level_value_sits_between_the_backbone_and_the_algorithm(cfg):
    """training.common < backbones.<b> < backbones.<b>.by_env.<env> (a per-quality map inside it
    read at the quality) < algorithms.<a>.options."""
    cfg["tier"] = "smoke"
    omar = cfg["backbones"]["omar"]
    omar["by_env"] = {"pp": {"omar_tau": 0.5, "cql_alpha": {"expert": 2.0, "medium": 3.0, "medium-replay": 4.0,
                                                            "random": 6.0}}}
    cfg["algorithms"]["omar-x"] = {"backbone": "omar", "rewards": "team", "options": {"omar_tau": 0.25}}
    C.check(cfg)
    job = C.train_job(cfg, "pp", "medium", "omar", 0)
    assert job.backbone_hp["omar_tau"] == 0.5 and job.backbone_hp["cql_alpha"] == 3.0     # the task's
    assert job.backbone_config.cql_alpha == 3.0
    assert C.train_job(cfg, "pp", "random", "omar", 0).backbone_hp["cql_alpha"] == 6.0
    cn = C.train_job(cfg, "cn", "medium", "omar", 0).backbone_hp                              # no task entry
    assert (cn["omar_tau"], cn["cql_alpha"]) == (0.7, 0.5)                                     # Table 4
    assert cn["gamma"] == cfg["training"]["common"]["gamma"]
    assert C.train_job(cfg, "pp", "medium", "omar-x", 0).backbone_hp["omar_tau"] == 0.25     # options win
    assert C.train_job(cfg, "pp", "medium", "icql", 0).backbone_hp["cql_alpha"] == 0.5       # omar's by_env only


def test_the_credit_task_takes_omars_cn_values_and_table1_tasks_table4(cfg):
    cfg["tier"] = "smoke"
    credit = C.train_job(cfg, "cn-credit", "medium", "omar", 0).backbone_hp
    assert (credit["omar_tau"], credit["cql_alpha"]) == (1.0, 5.0)         # OMAR's code, simple_spread medium
    assert C.train_job(cfg, "cn-credit", "random", "icql", 0).backbone_hp["cql_alpha"] == 0.5
    cn = C.train_job(cfg, "cn", "medium", "omar", 0).backbone_hp
    assert (cn["omar_tau"], cn["cql_alpha"]) == (0.7, 0.5)                 # the paper's Table 4


def test_the_starcraft_suites_take_the_authors_smac_values_below_a_task_entry(cfg):
    """backbones.<b>.by_suite.<suite> sits between the backbone and by_env: the SMAX maps (and the
    real SMAC's) train on the MACCA authors' SMAC settings, the MPE tasks keep Table 4's."""
    cfg["tier"] = "smoke"
    cfg["backbones"]["omar"]["by_env"]["5m_vs_6m"] = {"omar_tau": 0.5}
    C.check(cfg)
    for quality in ("expert", "medium"):
        icql = C.train_job(cfg, "2s3z", quality, "icql", 0).backbone_hp
        assert (icql["gamma"], icql["critic_lr"], icql["cql_alpha"], icql["grad_clip"]) == (0.99, 1e-3, 5.0, 10.0)
    omar = C.train_job(cfg, "2s3z", "medium", "macca-omar", 0).backbone_hp
    assert (omar["omar_tau"], omar["actor_lr"], omar["input_norm"]) == (0.2, 1e-3, False)
    assert C.train_job(cfg, "5m_vs_6m", "medium", "omar", 0).backbone_hp["omar_tau"] == 0.5   # the task wins
    maicq = C.train_job(cfg, "6h_vs_8z", "medium", "maicq", 0).backbone_hp
    assert (maicq["actor_lr"], maicq["critic_lr"]) == (5e-4, 1e-4)
    cn = C.train_job(cfg, "cn", "medium", "omar", 0).backbone_hp
    assert (cn["gamma"], cn["omar_tau"], cn["cql_alpha"], cn["input_norm"]) == (0.95, 0.7, 0.5, True)


@pytest.mark.parametrize("mutate, field, words", [
    (lambda c: c["backbones"]["omar"]["by_suite"].update({"smaxx": {"omar_tau": 0.5}}),
     "backbones.omar.by_suite.smaxx", "use one of"),
    (lambda c: c["backbones"]["omar"]["by_suite"]["smax"].update({"omar_tau": 1.5}),
     "backbones.omar.by_suite.smax.omar_tau", "<= 1"),
    (lambda c: c["backbones"]["omar"]["by_env"].update({"cnn": {"omar_tau": 0.5}}), "backbones.omar.by_env.cnn",
     "use one of cn, pp"),
    (lambda c: c["backbones"]["omar"]["by_env"].update({"pp": {"omar_tau": 1.5}}), "backbones.omar.by_env.pp.omar_tau",
     "<= 1"),
    (lambda c: c["backbones"]["icql"]["by_env"].update({"pp": {"omar_tau": 0.5}}), "backbones.icql.by_env.pp.omar_tau",
     "not a hyper-parameter of ICQLConfig"),
    (lambda c: c["backbones"]["omar"]["by_env"].update({"pp": {"cql_alpha": {"expert": 1.0}}}),
     "backbones.omar.by_env.pp.cql_alpha", "has no value for"),
])
def test_a_bad_task_level_value_is_named(cfg, mutate, field, words):
    mutate(cfg)
    with pytest.raises(ConfigError) as e:
        C.check(cfg)
    assert e.value.field == field and words in str(e.value)


def test_training_seed_i_reads_dataset_seed_i(cfg):
    cfg["tier"] = "paper"
    for seed in cfg["tiers"]["paper"]["train_seeds"]:
        job = C.train_job(cfg, "cn", "expert", "omar-gt", seed)
        assert job.dataset_seed == seed
        assert job.dataset.endswith(f"datasets/team/cn/expert/seed{seed}.h5")
        assert job.raw_dataset.endswith(f"datasets/raw/cn/expert/seed{seed}.h5")
        assert job.behavior.endswith(f"behavior/cn/seed{seed}/policies.pt")   # the opponents of that dataset
        assert job.to_dict()["dataset_seed"] == seed                         # what config.yaml records
    cfg["tiers"]["paper"]["dataset_seeds"] = [0, 1]
    assert [C.train_job(cfg, "cn", "expert", "omar", s).dataset_seed for s in (0, 1, 2, 3, 4)] == [0, 1, 0, 1, 0]
    cfg["tier"] = "smoke"   # one dataset seed: every training seed reads it
    assert {C.train_job(cfg, "cn", "expert", "omar", s).dataset_seed for s in (0, 1, 2)} == {0}


def test_a_tier_builds_only_the_tables_it_lists(cfg):
    """`tiers.<t>.tables` cuts a tier's cells table by table: a table it leaves out is off (with the
    reason) and schedules none of its runs, though the tier runs that table's env and quality."""
    from maccabench.aggregate import spec
    cfg["tier"] = "smoke"
    everything = {t.name for t in spec.tables(cfg)}
    assert {"table1", "table6", "credit"} <= everything
    cfg["tiers"]["smoke"]["tables"] = ["table1", "table9"]
    on = {t.name for t in spec.tables(cfg)}
    assert on == {"table1", "table9"}
    off = spec.resolve(cfg, "table6")
    assert off.runs() == [] and "tiers.smoke.tables" in off.inactive_reason
    assert spec.resolve(cfg, "table1").runs() == spec.resolve(cfg | {"tiers": {**cfg["tiers"], "smoke": {
        k: v for k, v in cfg["tiers"]["smoke"].items() if k != "tables"}}}, "table1").runs()
