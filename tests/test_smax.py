"""The SMAX suite (src/maccabench/envs/smax.py) against jaxmarl: sizes, availability masks, the
exact per-ally reward split, reproducibility, the won flag; rollouts and datasets of integer
actions; and its config entries. With tests/test_suites.py's SMAX entries, the only tests that
import jax (through the adapter): one 2s3z game of 8 envs is compiled once and shared here."""
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import ROOT
from maccabench import config as C
from maccabench import data
from maccabench.envs import make_team_env, spec_of
from maccabench.envs import smax_maps
from maccabench.errors import ConfigError, MaccabenchError
from maccabench.registry import SUITES
from maccabench.rollout import masked_argmax, random_available, run_episodes, stack_episodes

K = 8


@pytest.fixture(scope="module")
def env(base_config):
    return make_team_env(C.env_entry(base_config, "2s3z"), K, None)


@pytest.mark.parametrize("task", sorted(smax_maps.MAPS))
def test_description_is_the_real_game(task):
    import jax
    game = SUITES["smax"].make_game(task, {}, 1)
    m = smax_maps.MAPS[task]
    assert SUITES["smax"].describe().tasks[task].agent_names({}) == game.agents == m.agents
    assert game.obs_dims == [m.obs_dim] * m.allies            # jaxmarl's observation spaces
    assert game.action_dims == [m.n_actions] * m.allies
    assert game.episode_limit == smax_maps.EPISODE_LIMIT and game.discrete
    # the arrays a reset produces, traced without compiling
    _, _, obs, state, avail = jax.eval_shape(game._batched_reset, jax.ShapeDtypeStruct((1, 2), np.uint32))
    assert obs.shape == (1, m.allies, m.obs_dim) and avail.shape == (1, m.allies, m.n_actions)
    assert state.shape == (1, m.state_dim) == (1, game.state_dim)


def test_spec_of_a_smax_entry(base_config):
    spec = spec_of(C.env_entry(base_config, "6h_vs_8z"))
    assert spec.discrete and spec.agents == tuple(f"ally_{i}" for i in range(6))
    assert spec.action_dims == (13,) * 6 and spec.obs_dims == (179,) * 6 and spec.state_dim == 4 * 14


def test_unavailable_actions_are_refused(env):
    env.reset(list(range(K)))
    attack = np.full((K, env.spec.n_agents), smax_maps.MOVE_ACTIONS)   # enemy 0 is out of range at the start
    assert not env.avail_actions()[..., smax_maps.MOVE_ACTIONS].any()
    with pytest.raises(MaccabenchError, match="ally_0 took action 5, not available"):
        env.step(attack)


def test_masks_and_reward_split_over_random_play(env):
    rng = np.random.default_rng(0)
    obs, state = env.reset([100 + k for k in range(K)])
    N, na = env.spec.n_agents, 5
    assert obs.shape == (K, N, 127) and state.shape == (K, 40)
    deaths = unequal = 0
    for t in range(300):
        avail = env.avail_actions()
        health = state.reshape(K, -1, 4)[..., 0]          # allies then enemies
        dead = health[:, :na] == 0
        # a dead ally may only stop; a live one may always move or stop, and attack only live enemies
        assert (avail[dead].sum(-1) == 1).all() and avail[dead][:, smax_maps.MOVE_ACTIONS - 1].all()
        assert avail[~dead][:, : smax_maps.MOVE_ACTIONS].all()
        assert not (avail[..., smax_maps.MOVE_ACTIONS:] & (health[:, None, na:] == 0)).any()
        deaths += dead.sum()
        act = random_available(rng, avail)
        obs, state, rew, term, trunc = env.step(act)
        assert rew.shape == (K, N)
        np.testing.assert_allclose(rew.sum(-1), env.game.last_team_reward, atol=1e-6)   # jaxmarl's team reward
        # allies that did not attack get the same (uncaused) share; attackers who hit get more
        movers = act < smax_maps.MOVE_ACTIONS
        for k in range(K):
            if movers[k].sum() > 1:
                assert np.ptp(rew[k, movers[k]]) < 1e-7
            unequal += np.ptp(rew[k]) > 1e-4
        for k in np.flatnonzero(term | trunc):
            obs[k], state[k] = env.reset_one(k, 1000 + t * K + k)
    assert deaths > 0 and unequal > 0


def test_same_seed_same_episode(env):
    rng = np.random.default_rng(1)
    seeds = [5, 5, 6, 7, 8, 9, 10, 11]
    obs0, state0 = env.reset(seeds)
    np.testing.assert_array_equal(obs0[0], obs0[1])
    assert not np.array_equal(obs0[0], obs0[2])
    trace = []
    for _ in range(40):
        act = random_available(rng, env.avail_actions())
        act[1] = act[0]
        obs, state, rew, term, trunc = env.step(act)
        np.testing.assert_array_equal(obs[0], obs[1])
        np.testing.assert_array_equal(rew[0], rew[1])
        trace.append((act, obs, rew))
    # a reset episode replays the same way, and reset_one starts it where reset does
    np.testing.assert_array_equal(env.reset(seeds)[0], obs0)
    for act, obs, rew in trace:
        o, _, r, _, _ = env.step(act)
        np.testing.assert_array_equal(o, obs)
        np.testing.assert_array_equal(r, rew)
    o, s = env.reset_one(3, 5)
    np.testing.assert_array_equal(o, obs0[0])
    np.testing.assert_array_equal(s, state0[0])


def test_heuristic_allies_win_some_battles_and_won_says_which(env):
    """jaxmarl's heuristic on the allies' side wins 2s3z about half the time."""
    import jax
    from jaxmarl.environments.smax.heuristic_enemy import (create_heuristic_policy,
                                                           get_heuristic_policy_initial_state)
    N = env.spec.n_agents
    policy = jax.jit(jax.vmap(jax.vmap(create_heuristic_policy(env.game.env._env, 0))))
    pstate = jax.tree.map(lambda x: np.broadcast_to(x, (K, N) + np.shape(x)), get_heuristic_policy_initial_state())
    keys = jax.random.split(jax.random.PRNGKey(0), (200, K, N))
    obs, state = env.reset([300 + k for k in range(K)])
    ended = np.zeros(K, bool)
    won = np.zeros(K, bool)
    for t in range(env.spec.episode_limit):
        avail = env.avail_actions()
        act, pstate = policy(keys[t], pstate, obs)
        act = np.asarray(act)
        act = np.where(np.take_along_axis(avail, act[..., None], -1)[..., 0], act, avail.argmax(-1))
        obs, state, rew, term, trunc = env.step(act)
        assert not (rew[ended] != 0).any() and term[ended].all()     # an ended episode stays over
        info = env.episode_info()["won"]
        for k in np.flatnonzero((term | trunc) & ~ended):
            health = state[k].reshape(-1, 4)[:, 0]
            won[k] = info[k]
            assert won[k] == (term[k] and (health[5:] == 0).all() and (health[:5] > 0).any())
            if won[k]:
                assert rew[k].sum() > 1.0       # the win bonus
        ended |= term | trunc
        if ended.all():
            break
    assert ended.all() and 0 < won.sum() < K, won     # both outcomes occur, so `won` discriminates


def advance_and_focus_fire(spec):
    """A fixed policy that wins 2s3z about half the time: attack the highest-index enemy in range,
    else move east (towards the enemies)."""
    pref = np.zeros(spec.action_dim)
    pref[1] = 1.0
    pref[smax_maps.MOVE_ACTIONS:] = 10 + 0.1 * np.arange(spec.action_dim - smax_maps.MOVE_ACTIONS)
    return lambda obs, avail: masked_argmax(np.broadcast_to(pref, avail.shape), avail)


def test_epsilon_one_collection_plays_only_available_actions_and_writes_a_dataset(env, tmp_path):
    """epsilon = 1: every action uniform over the available ones, never a policy's "stop"; the
    recorded masks are those the actions were chosen from, and the data make a valid dataset."""
    stop = lambda obs, avail: np.full(avail.shape[:2], smax_maps.MOVE_ACTIONS - 1)
    arrays = stack_episodes(run_episodes(env, stop, K, seed=3, noise=1.0, record=True))
    act, avail = arrays["actions"], arrays["avail_actions"]
    T, N = act.shape
    assert T >= 300 and act.dtype == np.int64 and avail.shape == arrays["next_avail_actions"].shape == (T, N, 10)
    assert np.take_along_axis(avail, act[..., None], -1).all()          # the game refuses any other, too
    assert (act >= smax_maps.MOVE_ACTIONS).any() and (act < smax_maps.MOVE_ACTIONS - 1).any()
    within = ~arrays["episode_starts"][1:]           # a step's next masks are the following step's masks
    np.testing.assert_array_equal(arrays["next_avail_actions"][:-1][within], avail[1:][within])
    data.write(tmp_path / "smax.h5", arrays, env.spec, "raw")
    ds = data.read(tmp_path / "smax.h5", kind="raw", spec=env.spec)
    np.testing.assert_array_equal(ds.arrays["actions"], act)
    assert ds.arrays["avail_actions"].dtype == np.bool_


def test_won_reaches_the_episodes_and_says_which_battles_were_won(env):
    ep = run_episodes(env, advance_and_focus_fire(env.spec), 16, seed=3, record=True)
    arrays = stack_episodes(ep)
    ends = np.append(np.flatnonzero(arrays["episode_starts"])[1:], len(arrays["terminals"])) - 1
    health = arrays["next_state"][ends].reshape(len(ends), -1, 4)[..., 0]   # allies then enemies
    truth = arrays["terminals"][ends] & (health[:, 5:] == 0).all(1) & (health[:, :5] > 0).any(1)
    assert len(ep.won) == len(ep.returns) == 16
    np.testing.assert_array_equal(ep.won, truth)
    assert 0 < ep.win_rate < 1 and ep.win_rate == truth.mean()
    assert (np.asarray(ep.returns)[truth] > 1).all()     # the win bonus


def test_a_tier_with_smax_schedules_table2_and_table5_with_discrete_learners(cfg, tmp_path):
    """2s3z added to the smoke tier: the configuration validates, and `snakemake -n` plans IPPO
    behaviour learning, its datasets, every Table 2 and Table 5 algorithm's runs and both tables
    (the real training of each discrete backbone: tests/test_discrete_backbones.py)."""
    cfg["tiers"]["smoke"]["envs"].append("2s3z")
    C.check(cfg)
    extra = tmp_path / "smax.yaml"
    extra.write_text(yaml.safe_dump({"tiers": {"smoke": {"envs": cfg["tiers"]["smoke"]["envs"]}}}))
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "table2", "table5",
                        "--configfile", str(extra), "--config", "tier=smoke", f"results={tmp_path}/{{tier}}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for name in ("table2", "table2_vs_paper", "table5", "table5_vs_paper"):
        assert f"smoke/tables/{name}.csv" in r.stdout, name
    assert "smoke/behavior/2s3z/seed0/policies.pt" in r.stdout
    for algo in ("icql", "omar", "maicq", "macca-cql", "macca-omar", "macca-icq", "shaq", "sqddpg", "shaq-cql", "qmix-cql"):
        assert f"smoke/runs/2s3z/expert/{algo}/seed0/final.json" in r.stdout, algo


def test_a_map_smax_lacks_names_the_maps_it_has(cfg):
    cfg["environments"]["2s3z"]["task"] = "MMM2"
    with pytest.raises(ConfigError) as e:
        C.check(cfg)
    assert e.value.field == "environments.2s3z.task" and "5m_vs_6m" in str(e.value)


def test_validating_the_config_imports_neither_jax_nor_jaxmarl():
    code = ("import sys; from maccabench import config as C; C.check(C.load('config/config.yaml')); "
            "bad = [m for m in ('jax', 'jaxmarl', 'torch') if m in sys.modules]; assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
