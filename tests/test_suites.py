"""Conformance: every entry under `environments:` in config/config.yaml, whatever its suite, keeps
the interface every adapter promises (DESIGN.md "Environments", envs/base.py `Game`/`TeamEnv`):
the team's view with padded arrays, joint state, per-agent rewards that sum to the team reward,
the spec's episode length, reproducible episodes, and a spec that survives JSON."""
import numpy as np
import pytest
import yaml

from maccabench import config as C
from maccabench import data
from maccabench.envs import make_game, make_team_env, spec_of
from maccabench.envs.base import EnvSpec, action_mask, split_agents
from maccabench.registry import SUITES
from maccabench.rollout import masked_argmax, random_available, run_episodes, stack_episodes

from conftest import ROOT

ENVS = list(yaml.safe_load((ROOT / "config/config.yaml").read_text())["environments"])


def team_env(entry: dict, num_envs: int):
    """The entry's team env, any other agents acting by a fixed deterministic policy."""
    game = make_game(entry, 1)
    _, other_idx = split_agents(game.agents, entry["team"])
    mask = action_mask(game.action_dims)[other_idx]
    others = (lambda o, avail: np.broadcast_to(0.3 * mask, (*o.shape[:2], mask.shape[1])).astype(np.float32)) \
        if other_idx else None
    return make_team_env(entry, num_envs, others)


def linear_policy(spec: EnvSpec, seed: int = 0):
    """A fixed deterministic policy that depends on the observation, for any obs/action sizes:
    tanh of a linear map (continuous), or the available action it scores highest (discrete)."""
    w = np.random.default_rng(seed).standard_normal((spec.obs_dim, spec.action_dim)).astype(np.float32)
    if spec.discrete:
        return lambda obs, avail: masked_argmax(obs @ w, avail)
    return lambda obs, avail: np.tanh(obs @ w)


@pytest.fixture(params=ENVS)
def entry(request, cfg):
    lacking = SUITES[cfg["environments"][request.param]["suite"]].installation_problem(
        cfg["environments"][request.param]["task"])
    if lacking:   # the real SMAC where StarCraft II is absent: these tests run where it is installed
        pytest.skip(f"{request.param}: {lacking[0]}")
    return C.env_entry(cfg, request.param)


def own_state(entry: dict) -> bool:
    """Whether the suite's game has a joint state of its own (SMAX) rather than the team's observations."""
    return make_game(entry, 1).state_dim is not None


def team_actions(env, spec: EnvSpec, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Continuous: a fixed observation-dependent policy. Discrete: a random available action per agent."""
    if not spec.discrete:
        return linear_policy(spec)(obs, None) * spec.action_mask()
    return random_available(rng, env.avail_actions())


def check_padded_obs(spec: EnvSpec, obs: np.ndarray, state: np.ndarray, state_of_obs: bool = True):
    K = obs.shape[0]
    assert obs.shape == (K, spec.n_agents, spec.obs_dim) and obs.dtype == np.float32
    assert state.shape == (K, spec.state_dim) and state.dtype == np.float32
    for i, d in enumerate(spec.obs_dims):
        assert not obs[:, i, d:].any(), f"padded observation dims of agent {spec.agents[i]} are not zero"
    if not state_of_obs:
        return
    # joint state = the team's true-size observations, concatenated in team order
    expected = np.concatenate([obs[:, i, :d] for i, d in enumerate(spec.obs_dims)], axis=1)
    np.testing.assert_array_equal(state, expected)


def test_spec_describes_the_team_and_round_trips_through_json(entry):
    spec = spec_of(entry)
    assert spec.env == entry["name"] and spec.suite == entry["suite"] and spec.task == entry["task"]
    assert spec.agents == tuple(entry["team"]) and len(spec.obs_dims) == len(spec.action_dims) == spec.n_agents
    assert spec.state_dim == (make_game(entry, 1).state_dim if own_state(entry) else sum(spec.obs_dims))
    assert spec.episode_limit > 0
    assert EnvSpec.from_json(spec.to_json()) == spec
    assert team_env(entry, 1).spec == spec


def test_reset_and_step_over_the_team(entry):
    env = team_env(entry, 2)
    spec = env.spec
    of_obs = not own_state(entry)
    obs, state = env.reset([11, 12])
    check_padded_obs(spec, obs, state, of_obs)
    rng = np.random.default_rng(0)
    for _ in range(3):
        obs, state, rew, term, trunc = env.step(team_actions(env, spec, obs, rng))
        check_padded_obs(spec, obs, state, of_obs)
        assert rew.shape == (2, spec.n_agents) and rew.dtype == np.float32
        assert term.shape == trunc.shape == (2,) and term.dtype == trunc.dtype == np.bool_


def test_actions_outside_the_real_dims_are_ignored(entry):
    spec = spec_of(entry)
    if spec.discrete:
        pytest.skip(f"{entry['name']}: integer actions have no padded dimensions")
    pad = 1 - spec.action_mask()
    if not pad.any():
        pytest.skip(f"{entry['name']}: every agent has {spec.action_dim} action dims, nothing is padded")
    envs = [team_env(entry, 1) for _ in range(2)]
    outs = [e.reset([5]) for e in envs]
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = rng.uniform(-1, 1, (1, spec.n_agents, spec.action_dim)).astype(np.float32) * spec.action_mask()
        garbage = rng.uniform(-1, 1, a.shape).astype(np.float32) * pad
        outs = [envs[0].step(a), envs[1].step(a + garbage)]
        for x, y in zip(*outs):
            np.testing.assert_array_equal(x, y)


def test_episodes_last_the_spec_limit_and_team_reward_is_the_sum(entry):
    env = team_env(entry, 2)
    spec = env.spec
    ep = run_episodes(env, linear_policy(spec), 3, seed=7, noise=0.1, record=True)
    arrays = stack_episodes(ep)
    starts = np.flatnonzero(arrays["episode_starts"])
    lengths = np.diff(np.append(starts, len(arrays["team_rewards"])))
    ends = np.append(starts[1:], len(arrays["team_rewards"])) - 1
    assert len(starts) == 3 and (lengths <= spec.episode_limit).all()
    for end, n in zip(ends, lengths):   # an episode that is not terminated ends by the time limit
        assert arrays["terminals"][end] or (n == spec.episode_limit and arrays["timeouts"][end])
    assert arrays["timeouts"].sum() + arrays["terminals"].sum() == 3
    np.testing.assert_allclose(arrays["team_rewards"], arrays["individual_rewards"].astype(np.float64).sum(axis=1),
                               rtol=1e-5, atol=1e-6)
    # the evaluation return and the dataset's episode return are the same sum
    np.testing.assert_allclose(ep.returns, data.episode_returns(arrays["team_rewards"], arrays["episode_starts"]),
                               rtol=1e-5)


def test_same_seeds_give_the_same_episode(entry):
    spec = spec_of(entry)
    first, second = team_env(entry, 2), team_env(entry, 2)
    runs = [stack_episodes(run_episodes(env, linear_policy(spec), 2, seed, noise=0.1, record=True))
            for env, seed in ((first, 5), (second, 5), (first, 6))]
    assert runs[0].keys() == runs[1].keys()
    for k in runs[0]:
        np.testing.assert_array_equal(runs[0][k], runs[1][k])
    assert not np.array_equal(runs[0]["obs"], runs[2]["obs"])


def test_an_episode_recorded_before_a_reset_keeps_its_own_last_transition(entry):
    """Resetting an env for its next episode must not change what was recorded of the last one:
    the episodes an env plays first are recorded the same, whether more episodes follow or not."""
    env = team_env(entry, 2)
    alone, followed = (stack_episodes(run_episodes(env, linear_policy(env.spec), n, 9, noise=0.1, record=True))
                       for n in (2, 4))
    first_two = np.flatnonzero(followed["episode_starts"])[2]   # both envs end their first episode first
    for k in alone:
        np.testing.assert_array_equal(followed[k][:first_two], alone[k], err_msg=k)
