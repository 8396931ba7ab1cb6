"""Dataset files: round trip, checksum and truncation detection, spec checks, masking."""
import os

import h5py
import numpy as np
import pytest

from maccabench import config as C
from maccabench import data
from maccabench.envs import spec_of
from maccabench.envs.base import SpecMismatch
from maccabench.errors import DatasetError
from maccabench.io import atomic_path


def make_arrays(spec, T=50, seed=0):
    rng = np.random.default_rng(seed)
    N, O, A, S = spec.n_agents, spec.obs_dim, spec.action_dim, spec.state_dim
    f = lambda *s: rng.standard_normal(s).astype(np.float32)
    ind = f(T, N)
    starts = np.zeros(T, bool)
    starts[::25] = True
    return {"obs": f(T, N, O), "next_obs": f(T, N, O), "actions": f(T, N, A), "state": f(T, S),
            "next_state": f(T, S), "terminals": np.zeros(T, bool), "timeouts": np.roll(starts, -1),
            "individual_rewards": ind, "team_rewards": ind.sum(1), "episode_starts": starts}


@pytest.fixture
def spec(cfg):
    return spec_of(C.env_entry(cfg, "world"))


@pytest.fixture
def raw_file(tmp_path, spec):
    path = tmp_path / "raw.h5"
    data.write(path, make_arrays(spec), spec, "raw", quality="medium", seed=0, S_random=-10.0, S_expert=5.0,
               behavior_return={"mean": 1.0})
    return path


def test_round_trip(raw_file, spec):
    ds = data.read(raw_file, kind="raw", spec=spec)
    expected = make_arrays(spec)
    assert set(ds.arrays) == set(expected)
    for k, v in expected.items():
        np.testing.assert_array_equal(ds.arrays[k], v)
        assert ds.arrays[k].dtype == v.dtype
    assert ds.spec == spec and ds.attrs["S_random"] == -10.0 and ds.attrs["quality"] == "medium"
    assert ds.attrs["behavior_return"] == {"mean": 1.0} and "torch" in ds.attrs["versions"]
    assert len(ds) == 50


def test_altered_array_fails_checksum(raw_file):
    with h5py.File(raw_file, "r+") as f:
        f["team_rewards"][3] += 1.0
    with pytest.raises(DatasetError, match="checksum mismatch") as e:
        data.read(raw_file)
    assert str(raw_file) in str(e.value)


def test_truncated_file_is_named(raw_file):
    size = raw_file.stat().st_size
    with open(raw_file, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(DatasetError, match="truncated or corrupted") as e:
        data.read(raw_file)
    assert str(raw_file) in str(e.value)


def test_dataset_of_another_env_is_rejected(raw_file, cfg):
    with pytest.raises(SpecMismatch, match="does not match environment 'cn'") as e:
        data.read(raw_file, spec=spec_of(C.env_entry(cfg, "cn")))
    assert "obs_dims" in str(e.value) and str(raw_file) in str(e.value)


def test_mask_sums_and_drops_individual_rewards(raw_file, tmp_path):
    team = data.mask(raw_file, tmp_path / "team.h5")
    raw = data.read(raw_file)
    assert "individual_rewards" not in team.arrays
    np.testing.assert_allclose(team.arrays["team_rewards"], raw.arrays["individual_rewards"].sum(1), rtol=1e-6)
    for k in raw.arrays:
        if k not in ("individual_rewards", "team_rewards"):
            np.testing.assert_array_equal(team.arrays[k], raw.arrays[k])
    # no trace of individual rewards anywhere in the file: datasets or attributes
    with h5py.File(tmp_path / "team.h5") as f:
        names = []
        f.visit(names.append)
        assert not [n for n in names if "individual" in n]
        assert not [k for k in f.attrs if "individual" in k]
    assert team.kind == "team"


def test_raw_file_is_refused_where_team_is_needed(raw_file):
    with pytest.raises(DatasetError, match="'raw' dataset where a 'team' one is needed"):
        data.read(raw_file, kind="team")


def test_interrupted_write_leaves_nothing_that_looks_finished(tmp_path, spec):
    target = tmp_path / "d.h5"
    arrays = make_arrays(spec)

    class Killed(Exception):
        pass
    with pytest.raises(Killed):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half a file")
            raise Killed
    assert not target.exists() and not list(tmp_path.iterdir())
    data.write(target, arrays, spec, "raw")
    assert data.read(target).kind == "raw"


def test_team_write_refuses_individual_rewards(tmp_path, spec):
    with pytest.raises(ValueError, match="must not contain individual rewards"):
        data.write(tmp_path / "t.h5", make_arrays(spec), spec, "team")


def test_finished_files_get_the_usual_mode_not_mkstemps_0600(tmp_path):
    """Results on a shared cluster filesystem must be readable by the group, as any new file is."""
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "final.json") as tmp:
            tmp.write_text("{}")
    finally:
        os.umask(old)
    assert ((tmp_path / "final.json").stat().st_mode & 0o777) == 0o644


def test_a_killed_writers_temporary_file_is_removed_by_the_next_job(tmp_path):
    """SIGKILL runs no cleanup: the rerun of the job removes what the killed write left."""
    from maccabench.io import remove_partials
    (tmp_path / ".ckpt.pt.x1y2.partial").write_bytes(b"half a checkpoint")
    (tmp_path / "metrics.csv").write_text("updates\n0\n")
    remove_partials(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]


def discrete_arrays(spec, T=40, seed=0):
    """A valid discrete dataset's arrays: random masks (stop always available), actions among them."""
    from maccabench.rollout import random_available
    rng = np.random.default_rng(seed)
    arrays = {k: v for k, v in make_arrays(spec, T, seed).items() if k != "actions"}
    avail = rng.random((T + 1, spec.n_agents, spec.action_dim)) < 0.5
    avail[..., 4] = True
    arrays.update(actions=random_available(rng, avail[:-1]), avail_actions=avail[:-1], next_avail_actions=avail[1:])
    return arrays


@pytest.fixture
def smax_spec():
    """2s3z's spec from the map table (spec_of would build the game, importing jax)."""
    from maccabench.envs.base import EnvSpec
    from maccabench.envs.smax_maps import EPISODE_LIMIT, MAPS
    m = MAPS["2s3z"]
    return EnvSpec(env="2s3z", suite="smax", task="2s3z", agents=tuple(m.agents), obs_dims=(m.obs_dim,) * m.allies,
                   action_dims=(m.n_actions,) * m.allies, state_dim=m.state_dim, discrete=True,
                   episode_limit=EPISODE_LIMIT)


def test_discrete_dataset_round_trips_with_integer_actions_and_masks(tmp_path, smax_spec):
    arrays = discrete_arrays(smax_spec)
    data.write(tmp_path / "d.h5", arrays, smax_spec, "raw")
    ds = data.read(tmp_path / "d.h5", kind="raw", spec=smax_spec)
    assert ds.arrays.keys() == arrays.keys() and ds.attrs["checksum"] == data.checksum(arrays)
    for k, v in arrays.items():
        np.testing.assert_array_equal(ds.arrays[k], v)
        assert ds.arrays[k].dtype == v.dtype
    team = data.mask(tmp_path / "d.h5", tmp_path / "t.h5")       # the masks pass into team files
    np.testing.assert_array_equal(team.arrays["next_avail_actions"], arrays["next_avail_actions"])


def test_discrete_dataset_with_an_unavailable_action_is_refused_naming_file_and_step(tmp_path, smax_spec):
    arrays = discrete_arrays(smax_spec)
    path = tmp_path / "d.h5"
    data.write(path, arrays, smax_spec, "raw")
    t, i = 17, 2
    bad = int(np.flatnonzero(~arrays["avail_actions"][t, i])[0])
    arrays["actions"][t, i] = bad
    with pytest.raises(ValueError, match="not available"):        # the writer refuses such data too
        data.write(tmp_path / "other.h5", arrays, smax_spec, "raw")
    with h5py.File(path, "r+") as f:   # as a faulty writer or importer would leave it: checksum of the bad data
        f["actions"][t, i] = bad
        f.attrs["checksum"] = data.checksum(arrays)
    with pytest.raises(DatasetError, match=f"step {t}, agent ally_{i} took action {bad}, which was not available") as e:
        data.read(path)
    assert str(path) in str(e.value)


def test_discrete_dataset_without_masks_is_refused(tmp_path, smax_spec):
    arrays = discrete_arrays(smax_spec)
    del arrays["next_avail_actions"]
    with pytest.raises(ValueError, match="next_avail_actions"):
        data.write(tmp_path / "d.h5", arrays, smax_spec, "raw")


def test_a_collection_job_from_an_older_collector_is_refused(cfg, tmp_path):
    """The collection format is part of every collect job (so Snakemake collects stale datasets
    again when it changes); the collector refuses a job written for another format, by name."""
    from maccabench import config as C
    from maccabench.collect import collect
    from maccabench.errors import ConfigError
    from maccabench.jobs import COLLECTION_FORMAT

    job = C.collect_job(cfg, "cn", "expert", 0)
    assert job["collection_format"] == COLLECTION_FORMAT
    with pytest.raises(ConfigError) as e:
        collect({**job, "collection_format": COLLECTION_FORMAT - 1}, tmp_path, tmp_path / "x.h5")
    assert e.value.field == "--job.collection_format" and not (tmp_path / "x.h5").exists()
