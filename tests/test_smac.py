"""The real SMAC suite where StarCraft II is absent (as on every machine these tests run on): what
is missing is named before any job, and SMAC datasets in CFCQL's layout import into ours."""
from __future__ import annotations

import math
import subprocess
import sys

import h5py
import numpy as np
import pytest

from maccabench import config as C
from maccabench import data
from maccabench.cfcql import import_file
from maccabench.envs import smac_maps
from maccabench.errors import ConfigError, DatasetError
from maccabench.runfolder import SCORE_UNDEFINED

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture
def no_sc2(monkeypatch, tmp_path):
    """A machine without StarCraft II: SC2PATH points at an empty folder."""
    monkeypatch.setenv("SC2PATH", str(tmp_path / "StarCraftII"))
    return tmp_path / "StarCraftII"


def fake_package(root, with_env: bool):
    """A top-level `smac` package on sys.path: oxwhirl's layout (with `smac.env`) or SMAC3's (without)."""
    pkg = root / "site" / "smac"
    (pkg / "env").mkdir(parents=True) if with_env else pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    if with_env:
        (pkg / "env" / "__init__.py").write_text("")
    return root / "site"


def test_each_missing_piece_of_starcraft_is_named(no_sc2, tmp_path, monkeypatch):
    for mod in [m for m in sys.modules if m == "smac" or m.startswith("smac.")]:
        monkeypatch.delitem(sys.modules, mod)
    problem, install = smac_maps.installation_problem("2s3z")
    assert "smac.env" in problem and "oxwhirl/smac" in install and "SC2PATH" in install

    monkeypatch.syspath_prepend(str(fake_package(tmp_path / "smac3", with_env=False)))
    assert "SMAC3" in smac_maps.installation_problem("2s3z")[0]   # PyPI's `smac` is not SMAC

    monkeypatch.delitem(sys.modules, "smac")
    monkeypatch.syspath_prepend(str(fake_package(tmp_path / "oxwhirl", with_env=True)))
    assert str(no_sc2) in smac_maps.installation_problem("2s3z")[0]
    (no_sc2 / "Versions").mkdir(parents=True)
    assert "Versions/Base*" in smac_maps.installation_problem("2s3z")[0]
    (no_sc2 / "Versions" / "Base75689").mkdir()
    assert "MMM2.SC2Map" in smac_maps.installation_problem("MMM2")[0]
    (no_sc2 / smac_maps.MAP_DIR).mkdir(parents=True)
    (no_sc2 / smac_maps.MAP_DIR / "MMM2.SC2Map").write_bytes(b"")
    assert smac_maps.installation_problem("MMM2") is None


def test_a_tier_with_smac_fails_before_any_job_where_starcraft_is_missing(cfg, no_sc2):
    cfg["tiers"]["quick"]["envs"] = ["cn", "smac-2s3z"]
    cfg["tier"] = "quick"
    with pytest.raises(ConfigError) as e:
        C.check(cfg)
    assert e.value.field == "tiers.quick.envs[1]" and "smac-2s3z" in str(e.value) and "oxwhirl" in str(e.value)
    cfg["tier"] = "smoke"   # a tier not chosen may list it: only the chosen tier must run here
    C.check(cfg)


def test_snakemake_refuses_a_smac_tier_before_any_job(no_sc2, tmp_path):
    extra = tmp_path / "smac.yaml"
    extra.write_text("tiers:\n  smoke:\n    envs: [cn, smac-2s3z]\n")
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(extra),
                        "--config", "tier=smoke", f"results={tmp_path}/r"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0 and "tiers.smoke.envs[1]" in r.stdout + r.stderr
    assert not (tmp_path / "r").exists()


# ---- CFCQL files -------------------------------------------------------------------------------

N, O, S, A, LIMIT = 5, 7, 9, 11, 5   # smac-2s3z's team; small sizes of our own


def cfcql_file(path, lengths_terminated, seed=0):
    """A file in CFCQL's layout: one (transitions, terminated) pair per episode."""
    g = np.random.default_rng(seed)
    E, L1 = len(lengths_terminated), LIMIT + 1
    avail = g.random((E, L1, N, A)) < 0.6
    avail[..., 0] = True
    actions = np.zeros((E, L1, N, 1), np.int64)
    filled = np.zeros((E, L1, 1), np.int64)
    terminated = np.zeros((E, L1, 1), np.uint8)
    for e, (n, term) in enumerate(lengths_terminated):
        filled[e, : n + 1] = 1
        terminated[e, n - 1] = term
        for t in range(n):
            for i in range(N):
                actions[e, t, i, 0] = g.choice(np.flatnonzero(avail[e, t, i]))
    arrays = {"state": g.normal(size=(E, L1, S)).astype(np.float32), "obs": g.normal(size=(E, L1, N, O)).astype(np.float32),
              "actions": actions, "avail_actions": avail.astype(np.int32), "reward": g.random((E, L1, 1)).astype(np.float32),
              "terminated": terminated, "filled": filled, "probs": g.random((E, L1, N, A)).astype(np.float32)}
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
    return arrays


def test_a_cfcql_file_imports_as_transitions_of_its_episodes(cfg, tmp_path):
    src = tmp_path / "2s3z_expert.h5"
    episodes = [(3, True), (LIMIT, False), (1, True)]   # won/lost early, the episode limit, one step
    a = cfcql_file(src, episodes)
    ds = import_file(src, tmp_path / "team.h5", C.env_entry(cfg, "smac-2s3z"), "expert", 0)
    x = ds.arrays
    assert len(ds) == 9 and ds.kind == "team" and "individual_rewards" not in x
    assert ds.spec.n_agents == N and ds.spec.action_dim == A and ds.spec.state_dim == S and ds.spec.episode_limit == LIMIT
    assert np.flatnonzero(x["episode_starts"]).tolist() == [0, 3, 8]
    assert np.flatnonzero(x["terminals"]).tolist() == [2, 8] and np.flatnonzero(x["timeouts"]).tolist() == [7]
    np.testing.assert_array_equal(x["obs"][3:8], a["obs"][1, :5])          # episode 1, slots 0-4
    np.testing.assert_array_equal(x["next_obs"][3:8], a["obs"][1, 1:6])    # the slot after each
    np.testing.assert_array_equal(x["next_state"][:3], a["state"][0, 1:4])
    np.testing.assert_array_equal(x["actions"][8], a["actions"][2, 0, :, 0])
    np.testing.assert_array_equal(x["next_avail_actions"][:3], a["avail_actions"][0, 1:4].astype(bool))
    np.testing.assert_allclose(data.episode_returns(x["team_rewards"], x["episode_starts"]),
                               [a["reward"][0, :3].sum(), a["reward"][1, :5].sum(), a["reward"][2, 0, 0]], rtol=1e-6)
    assert math.isnan(ds.attrs["S_random"]) and ds.attrs[SCORE_UNDEFINED] and ds.attrs["source_format"] == "cfcql-hdf5"


def test_a_cfcql_file_with_an_unavailable_action_is_refused_naming_episode_and_step(cfg, tmp_path):
    src = tmp_path / "bad.h5"
    a = cfcql_file(src, [(2, True), (4, False)])
    with h5py.File(src, "r+") as f:
        avail = f["avail_actions"][()]
        avail[1, 2, 3, :] = 0
        avail[1, 2, 3, 0] = 1
        f["avail_actions"][...] = avail
        acts = f["actions"][()]
        acts[1, 2, 3, 0] = A - 1
        f["actions"][...] = acts
    with pytest.raises(DatasetError) as e:
        import_file(src, tmp_path / "team.h5", C.env_entry(cfg, "smac-2s3z"), "expert", 0)
    assert str(src) in str(e.value) and "episode 1 step 2, agent agent_3" in str(e.value)
    assert not (tmp_path / "team.h5").exists()


def test_a_cfcql_file_of_another_map_or_layout_is_refused(cfg, tmp_path):
    src = tmp_path / "6h.h5"
    cfcql_file(src, [(2, True)])
    with pytest.raises(DatasetError, match="has 5 agents, the env entry's team has 6"):
        import_file(src, tmp_path / "t.h5", C.env_entry(cfg, "smac-6h_vs_8z"), "expert", 0)
    with h5py.File(src, "r+") as f:
        del f["filled"]
    with pytest.raises(DatasetError, match="lacks the CFCQL keys filled"):
        import_file(src, tmp_path / "t.h5", C.env_entry(cfg, "smac-2s3z"), "expert", 0)


def test_import_command_writes_where_training_reads(tmp_path):
    src = tmp_path / "2s3z_medium.h5"
    cfcql_file(src, [(3, True), (2, False)])
    out = tmp_path / "team.h5"
    r = subprocess.run([sys.executable, "-m", "maccabench", "import-cfcql", str(src), "--env", "smac-2s3z",
                        "--quality", "medium", "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "5 transitions, 2 episodes" in r.stdout
    assert data.read(out, kind="team").attrs["quality"] == "medium"


def test_smac_rows_of_table2_sit_beside_the_papers_smac_values(cfg):
    import pandas as pd
    import yaml

    from maccabench.aggregate import spec, tables
    cfg["tier"] = "smoke"
    cfg["tiers"]["smoke"]["envs"] = ["smac-MMM2"]   # resolving a table runs no env: no StarCraft II needed
    t = spec.resolve(cfg, "table2")
    paper = yaml.safe_load((ROOT / "config/paper_values.yaml").read_text())
    no_runs = pd.DataFrame(columns=["env", "quality", "algo", "mean", "std"])
    frame = tables.side_by_side(t, no_runs, paper).long
    expert = frame[(frame.Env == "MMM2 (SMAC)") & (frame.Quality == "expert")]
    want = paper["table2"]["cells"]["MMM2"]["expert"]["macca-omar"]
    assert expert["MACCA-OMAR (paper)"].iloc[0] == f"{want[0]:.2f} ± {want[1]:.2f}"
