"""OMAR's MPE tasks and the credit task (envs/omar_scenarios.py) on hand-placed worlds."""
import math

import numpy as np
import pytest

from maccabench import config as C
from maccabench.envs import make_team_env, mpe, spec_of
from maccabench.envs.omar_scenarios import TASKS, OmarEnv, assigned_ground_truth, force_to_mpe2
from maccabench.errors import ConfigError
from maccabench.rollout import run_episodes, stack_episodes


def place(env, agents=None, landmarks=None, vels=None):
    """Reset `env`, then put agents / landmarks at the given positions (velocities zero unless given)."""
    env.reset(seed=0)
    w = env.world
    for a, p in zip(w.agents, agents or []):
        a.state.p_pos = np.array(p, float)
    for a, v in zip(w.agents, vels if vels is not None else [(0.0, 0.0)] * len(w.agents)):
        a.state.p_vel = np.array(v, float)
    for lm, p in zip(w.landmarks, landmarks or []):
        lm.state.p_pos = np.array(p, float)
    return env


def rewards_now(env):
    return [env.scenario.reward(a, env.world) for a in env.world.agents]


def step_all(env, forces):
    """One world step with a 2-D force per agent; -> rewards in agent order."""
    for f in forces:
        env.step(force_to_mpe2(np.asarray(f, np.float32)))
    return np.array([env.rewards[a] for a in env.possible_agents])


def joint_state(env):
    return np.concatenate([env.observe(a) for a in env.possible_agents]).astype(np.float64)


# ---- rewards against hand-computed positions ---------------------------------------------------

def test_cn_reward_caps_inverse_distance_and_penalises_each_collision():
    env = place(OmarEnv("omar_simple_spread", {}),
                agents=[(0, 0), (0.2, 0), (1, 1)], landmarks=[(0, 0.05), (0.6, 0), (1, -1)])
    # landmark 0: nearest agent at 0.05 -> 1/d = 20, capped at 10; landmark 1: agent 1 at 0.4 -> 2.5;
    # landmark 2: agent 1 at sqrt(0.8^2 + 1) -> 1 / 1.2806
    cover = 10 + 2.5 + 1 / math.sqrt(0.64 + 1)
    # agents 0 and 1 are 0.2 apart, under 2 * 0.15: each is penalised 5; agent 2 touches nobody
    np.testing.assert_allclose(rewards_now(env), [cover - 5, cover - 5, cover])
    place(env, agents=[(0, 0), (0.1, 0.1), (0.2, 0.2)], landmarks=[(0, 0), (3, 0), (3, 0)])
    # an agent exactly on a landmark gets the cap, not a division by zero; agent 1 touches both others
    cover = 10 + 2 * (1 / math.sqrt(2.8 ** 2 + 0.2 ** 2))
    np.testing.assert_allclose(rewards_now(env), [cover - 10, cover - 10, cover - 10])


def test_credit_task_rewards_each_agent_for_its_own_landmark_only():
    env = place(OmarEnv("simple_spread_assigned", {}),
                agents=[(0, 0), (0, 0), (1, 1)], landmarks=[(0.5, 0), (0.05, 0), (1, -1)])
    # agent 0 is 0.05 from landmark 1 but is paid only for landmark 0 (0.5 away); agents 0 and 1
    # overlap and are not penalised
    np.testing.assert_allclose(rewards_now(env), [2.0, 10.0, 0.5])
    r = step_all(env, [(0, 0)] * 3)  # the agents pass through each other: no contact force
    np.testing.assert_allclose(r, [2.0, 10.0, 0.5])


def test_pp_adversaries_share_a_shaped_reward_plus_ten_per_catch():
    env = place(OmarEnv("omar_simple_tag", {}), agents=[(0, 0), (0.1, 0), (1, 0), (0.1, 0.1)],
                landmarks=[(-3, -3), (3, 3)])
    d = [math.sqrt(0.02), 0.1, math.sqrt(0.81 + 0.01)]   # adversary -> prey; touching under 0.075 + 0.05
    adv = -0.1 * sum(d) + 10 * 1                           # only adversary 1 touches the prey
    prey = 0.1 * sum(d) - 10 * 1
    np.testing.assert_allclose(rewards_now(env), [adv, adv, adv, prey])
    place(env, agents=[(0, 0), (0, 0.5), (0, -0.5), (1.2, 0.95)], landmarks=[(-3, -3), (3, 3)])
    r = rewards_now(env)
    d = [math.hypot(1.2, 0.95), math.hypot(1.2, 0.45), math.hypot(1.2, 1.45)]
    bound = math.exp(2 * 1.2 - 2) + (0.95 - 0.9) * 10      # the prey is out of the arena in x, at its edge in y
    np.testing.assert_allclose(r, [-0.1 * sum(d)] * 3 + [0.1 * sum(d) - bound])


def test_world_catch_bonus_food_and_forest_flags():
    env = OmarEnv("omar_simple_world", {})
    # landmarks: obstacle, food 0, food 1, forest 0, forest 1
    place(env, agents=[(0, 0), (0.5, 0.5), (-0.5, 0.5), (0.1, 0)],
          landmarks=[(-3, -3), (0.12, 0.0), (0.5, -0.5), (0.1, 0.1), (3, 3)])
    d = [0.1, math.hypot(0.4, 0.5), math.hypot(0.6, 0.5)]
    adv = -0.1 * sum(d) + 5 * 1          # adversary 0 touches the prey (0.1 < 0.075 + 0.045)
    # prey: shaped, -5 for the catch, +2 for food 0 (0.02 < 0.045 + 0.03), +0.05 * nearest food distance
    prey = 0.1 * sum(d) - 5 + 2 + 0.05 * 0.02
    np.testing.assert_allclose(rewards_now(env), [adv, adv, adv, prey])
    obs = env.observe("agent_0")
    assert obs[-2:].tolist() == [1.0, -1.0]        # inside forest 0, not forest 1
    np.testing.assert_allclose(obs[4:14], np.array([(-3, -3), (0.12, 0), (0.5, -0.5), (0.1, 0.1), (3, 3)]).ravel()
                               - np.tile([0.1, 0], 5), atol=1e-6)
    place(env, agents=[(0, 0), (0.5, 0.5), (-0.5, 0.5), (0.95, 0)],
          landmarks=[(-3, -3), (0.95, 0.5), (0.5, -0.5), (3, 3), (3, 3)])
    d = [0.95, math.hypot(0.45, 0.5), math.hypot(1.45, 0.5)]
    prey = 0.1 * sum(d) - 2 * 0.5 + 0.05 * 0.5   # twice the edge penalty; food 0 is nearest
    assert rewards_now(env)[3] == pytest.approx(prey)


# ---- actions and dynamics ---------------------------------------------------------------------

def test_force_mapping_is_mpe2s_action_for_that_force():
    f = np.array([[0.6, -0.4], [-1.0, 0.25], [2.0, -3.0]], np.float32)
    a = force_to_mpe2(f)
    assert a.shape == (3, 5) and (a >= 0).all() and (a <= 1).all() and (a[:, 0] == 0).all()
    # mpe2 reads u = (a2 - a1, a4 - a3); forces beyond the box are clipped as mpe2's wrapper would
    np.testing.assert_allclose(np.stack([a[:, 2] - a[:, 1], a[:, 4] - a[:, 3]], 1), np.clip(f, -1, 1))


@pytest.mark.parametrize("task", ["omar_simple_spread", "omar_simple_tag"])
def test_two_d_action_gives_the_next_state_of_the_equivalent_5d_action(task):
    """The adapter's 2-D path and a raw env fed a different 5-D action with the same difference
    pairs end in the same state."""
    rng = np.random.default_rng(1)
    game = mpe.MPEGame(task, {}, 1)
    raw = OmarEnv(task, {})
    game.reset([7])
    raw.reset(seed=7)
    for _ in range(5):
        f = rng.uniform(-1, 1, (1, len(game.agents), 2)).astype(np.float32)
        obs, rew, _, _ = game.step(f)
        for x, y in f[0]:
            raw.step(np.array([0.9, 0.5 - x / 2, 0.5 + x / 2, 0.5 - y / 2, 0.5 + y / 2], np.float32))
        for i, a in enumerate(game.agents):
            np.testing.assert_allclose(obs[0, i, : game.obs_dims[i]], raw.observe(a), atol=1e-6)
        np.testing.assert_allclose(rew[0], [raw.rewards[a] for a in game.agents], rtol=1e-5)


@pytest.mark.parametrize("omar_forces, adv_gain, prey_gain", [(True, 9.0, 16.0), (False, 3.0, 4.0)])
def test_one_step_from_rest_follows_omars_integration(omar_forces, adv_gain, prey_gain):
    """From rest, force f moves an agent by dt^2 * gain * f in the same step (velocity first,
    then position); gain is 5 in CN, accel^2 in PP with OMAR's forces (accel without)."""
    f = np.array([0.6, -0.4])
    for task, args, gains in [("omar_simple_spread", {}, [5.0] * 3),
                              ("omar_simple_tag", {"omar_forces": omar_forces}, [adv_gain] * 3 + [prey_gain])]:
        env = OmarEnv(task, args)
        starts = [(-0.8, -0.8), (0.8, -0.8), (-0.8, 0.8), (0.8, 0.8)][: len(env.possible_agents)]
        place(env, agents=starts, landmarks=[(0, 3), (3, 0), (3, 3)])
        step_all(env, [f] * len(starts))
        for a, p0, g in zip(env.world.agents, starts, gains):
            v = 0.1 * g * f                       # dt * force / mass, under max speed here
            np.testing.assert_allclose(a.state.p_vel, v, atol=1e-6)
            np.testing.assert_allclose(a.state.p_pos, np.array(p0) + 0.1 * v, atol=1e-6)


# ---- the suite interface ----------------------------------------------------------------------

@pytest.mark.parametrize("task, team, obs_dims", [
    ("omar_simple_spread", ["agent_0", "agent_1", "agent_2"], (18, 18, 18)),
    ("simple_spread_assigned", ["agent_0", "agent_1", "agent_2"], (18, 18, 18)),
    ("omar_simple_tag", ["adversary_0", "adversary_1", "adversary_2"], (16, 16, 16)),
    ("omar_simple_world", ["adversary_0", "adversary_1", "adversary_2"], (24, 24, 24)),
])
def test_spec_sizes_and_episode_length(task, team, obs_dims):
    assert task in mpe.tasks() and set(team) <= set(mpe.agent_names(task, {}))
    spec = spec_of({"name": task, "suite": "mpe", "task": task, "task_args": {}, "team": team})
    assert spec.obs_dims == obs_dims and spec.action_dims == (2,) * len(team)
    assert spec.state_dim == sum(obs_dims) and spec.episode_limit == 25 and not spec.discrete
    game = mpe.MPEGame(task, {}, 2)
    game.reset([0, 1])
    for t in range(25):
        _, _, term, trunc = game.step(np.zeros((2, len(game.agents), 2), np.float32))
        assert not term.any() and trunc.all() == (t == 24)


@pytest.mark.parametrize("task", list(TASKS))
def test_same_seed_same_episode(task):
    def episode(seed):
        rng = np.random.default_rng(3)
        game = mpe.MPEGame(task, {}, 2)
        out = [game.reset([seed, seed + 1])]
        for _ in range(25):
            obs, rew, _, _ = game.step(rng.uniform(-1, 1, (2, len(game.agents), 2)).astype(np.float32))
            out += [obs, rew[..., None]]
        return np.concatenate([o.reshape(-1) for o in out])
    a, b, c = episode(5), episode(5), episode(6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_unknown_task_argument_names_the_field():
    with pytest.raises(ConfigError, match="task_args.local_ratio"):
        mpe.MPEGame("omar_simple_spread", {"local_ratio": 0.5}, 1)


# ---- the credit task's causal ground truth ----------------------------------------------------

def test_ground_truth_masks_match_finite_differences():
    """Every world perturbation that leaves agent i's masked state and action entries unchanged
    leaves agent i's reward unchanged; every one that changes them changes it."""
    state_mask, action_mask = assigned_ground_truth()
    assert state_mask.shape == (3, 54) and action_mask.shape == (3, 6)
    assert state_mask.sum(1).tolist() == [4, 4, 4] and action_mask.sum(1).tolist() == [2, 2, 2]
    rng = np.random.default_rng(0)
    env = OmarEnv("simple_spread_assigned", {})
    base = {"agents": [(-0.5, -0.5), (0.5, -0.4), (0.0, 0.6)], "vels": [(0.1, 0.0), (0.0, -0.2), (0.3, 0.1)],
            "landmarks": [(0.4, 0.3), (-0.6, 0.2), (0.7, -0.7)]}     # every agent far from its landmark: 1/d < 10
    forces = rng.uniform(-1, 1, (3, 2))

    def run(world, f):
        place(env, **world)
        s = joint_state(env)
        return s, step_all(env, f)

    s0, r0 = run(base, forces)
    checked = {"unchanged": 0, "changed": 0}
    for _ in range(40):
        world = {k: [np.array(p, float) for p in v] for k, v in base.items()}
        f = forces.copy()
        kind, j = rng.integers(5), rng.integers(3)
        delta = rng.normal(0, 0.1, 2)
        if kind == 0:
            world["agents"][j] = world["agents"][j] + delta
        elif kind == 1:
            world["vels"][j] = world["vels"][j] + delta
        elif kind == 2:
            world["landmarks"][j] = world["landmarks"][j] + delta
        elif kind == 3:
            f[j] = np.clip(f[j] + delta, -1, 1)
        else:   # agent j and its landmark moved together: only non-causes of j's reward change
            world["agents"][j] = world["agents"][j] + delta
            world["landmarks"][j] = world["landmarks"][j] + delta
        s, r = run(world, f)
        ds = np.abs(s - s0) > 1e-6  # observations are float32
        da = np.abs(f - forces).reshape(-1) > 0
        for i in range(3):
            touched = (ds & state_mask[i]).any() or (da & action_mask[i]).any()
            if touched:
                assert abs(r[i] - r0[i]) > 1e-6, (kind, j, i)
            else:
                assert r[i] == pytest.approx(r0[i], abs=1e-6), (kind, j, i)
            checked["changed" if touched else "unchanged"] += 1
    assert min(checked.values()) > 10   # both directions were exercised


@pytest.mark.parametrize("task, team", [("omar_simple_tag", ["adversary_0", "adversary_1", "adversary_2"]),
                                        ("simple_spread_assigned", ["agent_0", "agent_1", "agent_2"])])
def test_a_config_entry_validates_and_collects(cfg, task, team):
    """What registering a task will take: one config entry, checked by the config validator;
    collection records the team's individual rewards and their sum."""
    others = "frozen" if task == "omar_simple_tag" else "none"
    cfg["environments"]["new"] = {"suite": "mpe", "task": task, "task_args": {}, "team": team,
                                  "others": others, "metric": "normalized_score"}
    C.check(cfg)
    entry = C.env_entry(cfg, "new")
    prey = (lambda obs, avail: np.zeros((*obs.shape[:2], 2), np.float32)) if others == "frozen" else None
    ep = stack_episodes(run_episodes(make_team_env(entry, 2, prey), lambda o, avail: np.tanh(o[..., :2]), 2, 0,
                                     noise=0.1, record=True))
    assert ep["actions"].shape == (50, 3, 2) and ep["state"].shape[1] == spec_of(entry).state_dim
    np.testing.assert_allclose(ep["team_rewards"], ep["individual_rewards"].sum(1), rtol=1e-6)
