"""The mpe adapter against the real mpe2 environments (the interface every suite keeps is
tests/test_suites.py)."""
import importlib

import numpy as np
import pytest

from maccabench import config as C
from maccabench.envs import make_team_env, spec_of

TASKS = {"cn-mpe2": "simple_spread_v3", "pp-mpe2": "simple_tag_v3", "world-mpe2": "simple_world_comm_v3"}


@pytest.mark.parametrize("env", list(TASKS))
def test_spec_matches_mpe2_spaces(cfg, env):
    entry = C.env_entry(cfg, env)
    spec = spec_of(entry)
    raw = importlib.import_module(f"mpe2.{TASKS[env]}").parallel_env(continuous_actions=True, **entry["task_args"])
    assert spec.agents == tuple(entry["team"])
    assert spec.obs_dims == tuple(raw.observation_space(a).shape[0] for a in entry["team"])
    assert spec.action_dims == tuple(raw.action_space(a).shape[0] for a in entry["team"])
    assert spec.state_dim == sum(spec.obs_dims)  # joint state = concatenated team observations
    assert spec.episode_limit == 25 and not spec.discrete


def test_world_leader_has_wider_actions(cfg):
    spec = spec_of(C.env_entry(cfg, "world-mpe2"))
    assert spec.action_dims == (9, 5, 5, 5)
    assert spec.action_mask().sum(axis=1).tolist() == [9, 5, 5, 5]


@pytest.mark.parametrize("env", list(TASKS))
def test_individual_rewards_are_the_env_rewards(cfg, env):
    """Stepping the adapter and a raw mpe2 env with the same seed and actions gives the same
    per-agent rewards for the team; the team reward is their sum."""
    entry = C.env_entry(cfg, env)
    rng = np.random.default_rng(0)
    others = lambda obs, avail: np.full((*obs.shape[:2], 5), 0.3, np.float32)  # fixed opponents (5-dim actions)
    team_env = make_team_env(entry, 1, others if entry["others"] == "frozen" else None)
    game = team_env.game
    raw = importlib.import_module(f"mpe2.{TASKS[env]}").parallel_env(continuous_actions=True, **entry["task_args"])
    raw.reset(seed=123)
    obs, state = team_env.reset([123])
    for _ in range(25):
        a = rng.uniform(-1, 1, (1, spec_of(entry).n_agents, spec_of(entry).action_dim)).astype(np.float32)
        a *= team_env.spec.action_mask()
        obs, state, rew, term, trunc = team_env.step(a)
        full = {}
        for i, name in enumerate(game.agents):
            d = game.action_dims[i]
            if name in entry["team"]:
                act = a[0, entry["team"].index(name), :d]
            else:
                act = np.full(d, 0.3, np.float32)
            full[name] = np.clip((act + 1) / 2, 0, 1).astype(np.float32)
        _, raw_rew, _, raw_trunc, _ = raw.step(full)
        np.testing.assert_allclose(rew[0], [raw_rew[n] for n in entry["team"]], rtol=1e-6)
    assert trunc[0] and not term[0]  # MPE episodes end by time limit after 25 steps
