"""The discrete backbones (algos/*_discrete.py): their losses against hand-computed values on tiny
cases with unavailable and padded actions, greedy acting over the available actions only, the
registry resolving one backbone name to the continuous or discrete implementation by the env's
spec (and refusing a kind it lacks before any job), and training on datasets: a synthetic one
written with data.py's writer, and one collected from the real SMAX game (the only test here that
imports jax)."""
import dataclasses
import io
import math

import numpy as np
import pytest
import torch

from maccabench import config as C
from maccabench import data
from maccabench.algos.common import (UNAVAILABLE, masked_argmax, masked_log_softmax, masked_logsumexp, masked_max,
                                     take)
from maccabench.algos.icql import ICQL
from maccabench.algos.icql_discrete import DiscreteICQL, discrete_cql_penalty, twin_max_target
from maccabench.algos.maicq import MAICQ
from maccabench.algos.maicq_discrete import DiscreteMAICQ, policy_baseline, weighted_log_likelihood
from maccabench.algos.omar import OMAR
from maccabench.algos.omar_discrete import DiscreteOMAR, discrete_omar_actor_loss
from maccabench.envs.base import EnvSpec, team_reward
from maccabench.errors import ConfigError
from maccabench.registry import BACKBONES
from maccabench.train import Batches, training_step

T = torch.tensor
CPU = torch.device("cpu")
# two agents, the second with 3 actions padded to the first's 4 (its action 3 is never real)
TINY = EnvSpec(env="tiny", suite="smax", task="tiny", agents=("a", "b"), obs_dims=(3, 3), action_dims=(4, 3),
               state_dim=5, discrete=True, episode_limit=10)
CN = EnvSpec(env="cn", suite="mpe", task="simple_spread_v3", agents=("a", "b", "c"), obs_dims=(18, 18, 18),
             action_dims=(5, 5, 5), state_dim=54, discrete=False, episode_limit=25)
DISCRETE = {"icql": DiscreteICQL, "omar": DiscreteOMAR, "maicq": DiscreteMAICQ}
CONTINUOUS = {"icql": ICQL, "omar": OMAR, "maicq": MAICQ}


def hp(cfg, algo, quality="medium", **over):
    return dataclasses.replace(C.backbone_config(cfg, algo, quality), **over)


def discrete_batch(spec, B=6, seed=0):
    """Random observations; availability masks with some actions unavailable (padding marked
    available on purpose: the backbones must drop it themselves); actions among the available."""
    g = torch.Generator().manual_seed(seed)
    N, O, A, S = spec.n_agents, spec.obs_dim, spec.action_dim, spec.state_dim

    def masks():
        m = torch.rand(B, N, A, generator=g) > 0.5
        m[..., 0] = True
        return m

    def pick(m):   # uniform among the available and real actions
        real = m & torch.as_tensor(spec.action_mask()).bool()
        return torch.multinomial(real.float().view(-1, A), 1, generator=g).view(B, N)

    avail, navail = masks(), masks()
    b = {"obs": torch.randn(B, N, O, generator=g), "next_obs": torch.randn(B, N, O, generator=g),
         "actions": pick(avail), "next_actions": pick(navail), "avail_actions": avail, "next_avail_actions": navail,
         "next_action_valid": torch.arange(B) % 3 != 2, "state": torch.randn(B, S, generator=g),
         "next_state": torch.randn(B, S, generator=g), "terminals": (torch.arange(B) == 1).float(),
         "team_rewards": torch.randn(B, generator=g)}
    b["rewards"] = torch.randn(B, N, generator=g)
    return b


def constant_output(net, values):
    """An AgentMLP that outputs `values` [A] (or [N, A]) for every input: zero last-layer weights."""
    with torch.no_grad():
        net.layers[-1].weight.zero_()
        net.layers[-1].bias.copy_(torch.as_tensor(values, dtype=torch.float32).expand_as(net.layers[-1].bias[:, 0])[:, None])


# ---- the masked reductions ----------------------------------------------------------------------

def test_masked_reductions_ignore_unavailable_actions_and_stay_finite_when_none_is_available():
    x = T([[3.0, 1.0, 2.0], [5.0, 0.0, -1.0]], requires_grad=True)
    avail = T([[False, True, True], [False, False, False]])
    assert masked_argmax(x, avail)[0] == 2 and masked_max(x, avail)[0] == 2.0      # 3.0 is unavailable
    assert math.isclose(masked_logsumexp(x, avail)[0].item(), math.log(math.e + math.e ** 2), rel_tol=1e-6)
    logp = masked_log_softmax(x, avail)
    assert logp[0, 0].exp() == 0 and math.isclose(logp[0, 1:].exp().sum().item(), 1.0, rel_tol=1e-6)
    # nothing available: finite values (a uniform softmax), no NaN in values or gradients
    assert torch.isfinite(masked_logsumexp(x, avail)).all() and torch.isfinite(logp).all()
    assert torch.allclose(logp[1].exp(), torch.full((3,), 1 / 3))
    masked_logsumexp(x, avail).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad[0, 0] == 0      # no gradient to an unavailable action
    assert UNAVAILABLE > torch.finfo(torch.bfloat16).min              # representable under bf16 autocast


# ---- I-CQL ----------------------------------------------------------------------------------------

def test_twin_max_target_by_hand():
    q1 = T([[[1.0, 5.0, 3.0], [2.0, 2.0, 2.0]]])
    q2 = T([[[2.0, 4.0, 9.0], [0.0, 1.0, 2.0]]])
    navail = T([[[True, False, True], [True, True, True]]])
    y = twin_max_target(T([[1.0, 2.0]]), T([0.0, 1.0]), 0.9, q1, q2, navail)
    # row 0: min = [1, 4, 3], action 1 unavailable -> max 3 (not 4); row 1 terminal: no bootstrap
    assert torch.allclose(y, T([[1.0 + 0.9 * 3.0, 2.0]]))


def test_discrete_cql_penalty_by_hand():
    q = T([[[1.0, 2.0, 5.0], [0.0, 0.0, 0.0]]])
    avail = T([[[True, True, False], [True, True, True]]])
    got = discrete_cql_penalty(q, avail, T([[0, 2]]))
    want = ((math.log(math.e + math.e ** 2) - 1.0) + (math.log(3.0) - 0.0)) / 2
    assert math.isclose(got.item(), want, rel_tol=1e-6)


@pytest.mark.parametrize("algo", ["icql", "omar"])
def test_icql_update_losses_by_hand_with_constant_critics(cfg, algo):
    """Critics that output b for every observation: the update's TD and CQL terms are the
    hand-computed ones: each agent's own reward, the max over its *available real* next actions,
    the log-sum-exp over its available real actions (agent b's padded action 3 never counts)."""
    b_vals = T([1.0, 2.0, 0.5, 50.0])        # action 3: best, but unavailable for a (below) and padding for b
    bb = DISCRETE[algo](TINY, hp(cfg, algo, cql_alpha=0.5), CPU, seed=0)
    for net in (bb.q1, bb.q2, bb.q1_t, bb.q2_t):
        constant_output(net, b_vals)
    batch = discrete_batch(TINY)
    batch["avail_actions"][:, 0, 3] = False
    batch["next_avail_actions"][:, 0, 3] = False
    batch["actions"][:, 0] = batch["actions"][:, 0].clamp(max=2)
    out = bb.update(batch)

    real = torch.as_tensor(TINY.action_mask()).bool()
    td, cql = 0.0, 0.0
    for i in range(2):
        for k in range(6):
            navail = batch["next_avail_actions"][k, i] & real[i]
            avail = batch["avail_actions"][k, i] & real[i]
            y = batch["rewards"][k, i] + cfg["training"]["common"]["gamma"] * (1 - batch["terminals"][k]) * b_vals[navail].max()
            q = b_vals[batch["actions"][k, i]]
            td += 2 * (q - y) ** 2 / 6
            cql += 2 * (torch.logsumexp(b_vals[avail], 0) - q) / 6
    assert math.isclose(out["losses/td"].item(), td.item() / 2, rel_tol=1e-5)      # mean over agents
    assert math.isclose(out["losses/cql"].item(), cql.item() / 2, rel_tol=1e-5)


# ---- OMAR -----------------------------------------------------------------------------------------

def test_discrete_omar_actor_loss_by_hand():
    logits = T([[[0.0, math.log(2.0), 10.0]]], requires_grad=True)
    avail = T([[[True, True, False]]])
    q = T([[[3.0, 1.0, 100.0]]])
    logp = masked_log_softmax(logits, avail)            # pi = [1/3, 2/3, 0]
    loss, mimic = discrete_omar_actor_loss(logp, q, avail, tau=0.7)
    # E_pi Q = 3/3 + 2/3; the rectification target is action 0 (Q 3), not the unavailable action 2 (Q 100)
    assert math.isclose(mimic.item(), math.log(3.0), rel_tol=1e-6)
    assert math.isclose(loss.item(), 0.3 * -(5.0 / 3.0) + 0.7 * math.log(3.0), rel_tol=1e-6)
    loss.sum().backward()
    assert logits.grad[0, 0, 2] == 0


# ---- MA-ICQ ---------------------------------------------------------------------------------------

def test_maicq_actor_terms_by_hand():
    logp = torch.log(T([[[0.5, 0.5, 0.0], [0.25, 0.75, 0.0]]]).clamp(min=1e-30))
    q = T([[[2.0, 4.0, 99.0], [4.0, 0.0, 99.0]]])
    assert torch.allclose(policy_baseline(logp, q), T([[3.0, 1.0]]))          # the unavailable 99 weighs 0
    loss = weighted_log_likelihood(take(logp, T([[0, 1]])), T([[2.0, 0.0]]))
    assert math.isclose(loss.item(), -(2.0 * math.log(0.5) + 0.0) / 2, rel_tol=1e-6)


def test_maicq_critic_target_uses_the_dataset_next_action_else_the_greedy_available_one(cfg):
    """Per-agent rewards (mixer off), constant critics b and constant policy logits: y_i = r_i +
    gamma w_i Q_i(o', a'_i) with a' the dataset's next action where the episode goes on, else the
    policy's best available next action; w_i = batch_weights of those next values."""
    from maccabench.algos.maicq import batch_weights
    c = hp(cfg, "maicq", mixer=False)
    bb = DiscreteMAICQ(TINY, c, CPU, seed=0)
    b_vals, logits = T([1.0, 2.0, 3.0, 40.0]), T([0.0, 5.0, 1.0, 9.0])
    for net in (bb.critic, bb.critic_t):
        constant_output(net, b_vals)
    constant_output(bb.actor, logits)
    batch = discrete_batch(TINY)
    batch["next_avail_actions"][:, 0, 3] = False      # agent a's favourite (logit 9, Q 40) unavailable
    real = torch.as_tensor(TINY.action_mask()).bool()
    greedy = torch.stack([torch.where(batch["next_avail_actions"][:, i] & real[i], logits, UNAVAILABLE).argmax(-1)
                          for i in range(2)], 1)                                           # [B, N]
    next_act = torch.where(batch["next_action_valid"][:, None], batch["next_actions"], greedy)
    next_q = b_vals[next_act].T                                                           # [N, B]
    y = batch["rewards"].T + c.gamma * (1 - batch["terminals"]) * batch_weights(next_q, c.critic_temperature) * next_q
    want = (y - b_vals[batch["actions"]].T).pow(2).mean(-1).mean()
    out = bb.update(batch)
    assert math.isclose(out["losses/critic"].item(), want.item(), rel_tol=1e-5)
    assert (greedy != 3).all() and (~batch["next_action_valid"]).any()    # 3: unavailable (a) or padding (b)


# ---- acting ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("algo", list(DISCRETE))
def test_act_picks_the_best_available_action_never_an_unavailable_one(cfg, algo):
    bb = BACKBONES[algo].build(TINY, hp(cfg, algo), CPU, seed=0)
    scores = T([9.0, 1.0, 3.0, 2.0])                 # action 0 is the favourite
    constant_output(bb.acting, scores)
    rng = np.random.default_rng(0)
    real = TINY.action_mask().astype(bool)
    avail = rng.random((64, 2, 4)) < 0.5
    avail[..., 1] |= ~(avail & real).any(-1)         # every agent has a real action available
    avail[:, :, 3] = True                            # padding marked available: b still never takes 3
    avail[0] = False
    avail[0, :, 1] = True                            # "dead" agents: one action left
    obs = rng.standard_normal((64, 2, 3)).astype(np.float32)
    acts = bb.act(obs, avail)
    assert acts.shape == (64, 2) and acts.dtype == np.int64
    assert np.take_along_axis(avail & real, acts[..., None], -1).all()
    want = np.where(avail & real, scores.numpy(), -np.inf).argmax(-1)
    np.testing.assert_array_equal(acts, want)
    assert (acts[0] == 1).all()


@pytest.mark.parametrize("algo", list(DISCRETE))
def test_checkpoint_restores_the_same_next_update(cfg, algo):
    a = BACKBONES[algo].build(TINY, hp(cfg, algo), CPU, seed=0)
    a.update(discrete_batch(TINY, seed=1))
    b = BACKBONES[algo].build(TINY, hp(cfg, algo), CPU, seed=5)
    buf = io.BytesIO()          # through bytes, as ckpt.pt (a live state_dict shares Adam's tensors)
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b.load_state_dict(torch.load(buf, weights_only=False))
    batch = discrete_batch(TINY, seed=2)
    out_a, out_b = a.update(batch), b.update(batch)
    assert all(torch.equal(out_a[k], out_b[k]) for k in out_a) and b.updates == 2


# ---- the registry: one name, the implementation by the env's kind -----------------------------------

@pytest.mark.parametrize("algo", list(DISCRETE))
def test_a_backbone_name_resolves_by_the_env_spec(cfg, algo):
    assert type(BACKBONES[algo].build(TINY, hp(cfg, algo), CPU, seed=0)) is DISCRETE[algo]
    assert type(BACKBONES[algo].build(CN, hp(cfg, algo), CPU, seed=0)) is CONTINUOUS[algo]


def test_every_table_algorithm_trains_2s3z_and_its_job_builds(cfg):
    for algo, entry in cfg["algorithms"].items():
        if entry["rewards"] == "team":
            job = C.train_job(cfg, "2s3z", "medium", algo, 0)
            loaded = BACKBONES[job.backbone].load(True)
            if job.backbone in DISCRETE:   # the names Table 1 shares with the continuous suites
                assert loaded is DISCRETE[job.backbone]
            else:                          # discrete-only backbones (Table 5's)
                assert BACKBONES[job.backbone].impl is None and hasattr(loaded, "update")


def test_a_continuous_only_backbone_on_a_discrete_env_is_a_config_error_before_any_job(cfg, monkeypatch):
    monkeypatch.setitem(BACKBONES, "icql", dataclasses.replace(BACKBONES["icql"], discrete_impl=None))
    cfg["tiers"]["smoke"]["envs"].append("2s3z")
    j = next(j for j, a in enumerate(cfg["tiers"]["smoke"]["algos"]) if cfg["algorithms"][a]["backbone"] == "icql")
    with pytest.raises(ConfigError) as e:
        C.check(cfg)
    assert e.value.field == f"tiers.smoke.algos[{j}]"
    assert "2s3z" in e.value.problem and "no implementation for discrete actions" in e.value.problem
    assert "omar, maicq" in e.value.problem and "remove" in e.value.fix
    with pytest.raises(ConfigError) as e:
        C.train_job(cfg, "2s3z", "medium", "icql", 0)
    assert e.value.field == "algorithms.icql.backbone" and "discrete" in e.value.problem


def test_a_discrete_only_backbone_on_a_continuous_env_is_a_config_error(cfg, monkeypatch):
    monkeypatch.setitem(BACKBONES, "omar", dataclasses.replace(BACKBONES["omar"], impl=None))
    with pytest.raises(ConfigError) as e:
        C.check(cfg)
    assert e.value.field.startswith("tiers.") and "no implementation for continuous actions" in e.value.problem
    with pytest.raises(ConfigError, match="algorithms.omar.backbone"):
        C.train_job(cfg, "cn", "medium", "omar", 0)


# ---- training on datasets ---------------------------------------------------------------------------

def synthetic_dataset(path, spec, T=60, seed=0):
    """A valid discrete team dataset: episodes of 20 steps, random masks, available actions."""
    rng = np.random.default_rng(seed)
    N, O, A = spec.n_agents, spec.obs_dim, spec.action_dim
    real = spec.action_mask().astype(bool)
    avail = (rng.random((T + 1, N, A)) < 0.6) & real
    avail[..., 0] = True
    act = np.where(avail[:T], rng.random((T, N, A)), -1).argmax(-1)
    starts = np.arange(T) % 20 == 0
    arrays = {"obs": rng.standard_normal((T, N, O)).astype(np.float32),
              "next_obs": rng.standard_normal((T, N, O)).astype(np.float32), "actions": act.astype(np.int64),
              "state": rng.standard_normal((T, spec.state_dim)).astype(np.float32),
              "next_state": rng.standard_normal((T, spec.state_dim)).astype(np.float32),
              "terminals": np.roll(starts, -1) & (np.arange(T) < 40), "timeouts": np.arange(T) == T - 1,
              "team_rewards": rng.standard_normal(T).astype(np.float32), "episode_starts": starts,
              "avail_actions": avail[:T], "next_avail_actions": avail[1:]}
    data.write(path, arrays, spec, "team", S_random=0.0, S_expert=1.0)
    return data.read(path, kind="team", spec=spec)


def train_a_little(cfg, spec, ds, updates=5, batch_size=16):
    """Each discrete backbone through the training loop's step on the dataset's batches."""
    from maccabench.rewards import RewardContext, make_assigner
    out = {}
    for algo in DISCRETE:
        bb = BACKBONES[algo].build(spec, hp(cfg, algo), CPU, seed=0)
        assigner = make_assigner("team", RewardContext(spec, None, CPU, 0, ds))
        batches = Batches(ds, CPU, seed=0)
        for _ in range(updates):
            stats = training_step(assigner, bb, batches.sample(batch_size))
        assert all(torch.isfinite(torch.as_tensor(v)).all() for v in stats.values()), (algo, stats)
        out[algo] = bb
    return out


def test_batches_of_a_discrete_dataset_feed_every_discrete_backbone(cfg, tmp_path):
    ds = synthetic_dataset(tmp_path / "d.h5", TINY)
    batch = Batches(ds, CPU, seed=0).sample(32)
    assert batch["actions"].dtype == batch["next_actions"].dtype == torch.int64
    assert batch["avail_actions"].dtype == batch["next_avail_actions"].dtype == torch.bool
    assert take(batch["avail_actions"], batch["actions"]).all()
    valid = batch["next_action_valid"]
    assert take(batch["next_avail_actions"][valid], batch["next_actions"][valid]).all()
    train_a_little(cfg, TINY, ds)


@pytest.mark.slow
def test_training_on_real_smax_data_then_playing_smax(cfg, tmp_path):
    """Random play collected from jaxmarl's 2s3z, a few updates of each discrete backbone, then
    evaluation episodes in the game, which refuses unavailable actions (the only jax import here)."""
    from maccabench.envs import make_team_env
    from maccabench.rollout import run_episodes, stack_episodes
    env = make_team_env(C.env_entry(cfg, "2s3z"), 8, None)
    arrays = stack_episodes(run_episodes(env, lambda obs, avail: np.zeros(avail.shape[:2], np.int64) + 4, 8,
                                         seed=1, noise=1.0, record=True))
    arrays["team_rewards"] = team_reward(arrays.pop("individual_rewards"))
    data.write(tmp_path / "smax.h5", arrays, env.spec, "team", S_random=0.0, S_expert=1.0)
    ds = data.read(tmp_path / "smax.h5", kind="team", spec=env.spec)
    for algo, bb in train_a_little(cfg, env.spec, ds, updates=10, batch_size=64).items():
        ep = run_episodes(env, bb.act, 8, seed=2)
        assert len(ep.returns) == 8 and ep.win_rate is not None, algo
