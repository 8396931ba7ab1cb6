"""The backbones' losses against hand-computed values on tiny tensors, and the properties the
training loop relies on (independent agents, padded actions, checkpoints, config errors)."""
import dataclasses
import io
import math

import numpy as np
import pytest
import torch

from maccabench import config as C
from maccabench.algos.common import (OMAR_NETWORKS, agent_major, clip_grad_norm_per_agent, masked_mean,
                                     stacked_actor, stacked_critic)
from maccabench.algos.icql import cql_penalty, deterministic_actor_loss, td_target
from maccabench.algos.maicq import LinearMixer, batch_weights, expectile_loss, weighted_regression
from maccabench.algos.omar import better_of, omar_actor_loss, softmax_refit, zeroth_order_actions
from maccabench.envs.base import EnvSpec
from maccabench.errors import ConfigError
from maccabench.nets import AgentBatchNorm, AgentMLP
from maccabench.registry import BACKBONES

T = torch.tensor
CONTINUOUS = [name for name, entry in BACKBONES.items() if entry.impl is not None]   # discrete ones: test_credit_methods.py
# world's team: a leader with 9 action dimensions and three agents with 5 (padded to 9)
WORLD = EnvSpec(env="world", suite="mpe", task="simple_world_comm_v3", agents=("l", "a", "b", "c"),
                obs_dims=(34, 34, 34, 34), action_dims=(9, 5, 5, 5), state_dim=136, discrete=False, episode_limit=25)
CN = EnvSpec(env="cn", suite="mpe", task="simple_spread_v3", agents=("a", "b", "c"), obs_dims=(18, 18, 18),
             action_dims=(5, 5, 5), state_dim=54, discrete=False, episode_limit=25)


def hp(cfg, algo, quality="medium", **over):
    """The algorithm's backbone config at `quality`, parsed as a job parses it, with overrides."""
    return dataclasses.replace(C.backbone_config(cfg, algo, quality), **over)


def batch_for(spec, B=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    N, O, A, S = spec.n_agents, spec.obs_dim, spec.action_dim, spec.state_dim
    m = torch.as_tensor(spec.action_mask())
    b = {"obs": torch.randn(B, N, O, generator=g), "next_obs": torch.randn(B, N, O, generator=g),
         "actions": (torch.rand(B, N, A, generator=g) * 2 - 1) * m,
         "next_actions": (torch.rand(B, N, A, generator=g) * 2 - 1) * m,
         "next_action_valid": torch.rand(B, generator=g) > 0.3, "state": torch.randn(B, S, generator=g),
         "next_state": torch.randn(B, S, generator=g), "terminals": torch.zeros(B),
         "team_rewards": torch.randn(B, generator=g)}
    b["rewards"] = torch.randn(B, N, generator=g)
    return b


def constant_critic(module, value):
    """Make an AgentMLP critic output `value` everywhere (last layer: zero weights, bias = value)."""
    with torch.no_grad():
        module.layers[-1].weight.zero_()
        module.layers[-1].bias.fill_(value)


# ---- I-CQL ----------------------------------------------------------------------------------------

def test_td_target_by_hand():
    y = td_target(T([[1.0, 2.0]]), T([0.0, 1.0]), 0.9, T([[10.0, 10.0]]))
    assert torch.allclose(y, T([[10.0, 2.0]]))   # 1 + 0.9*10; terminal: no bootstrap


def test_cql_penalty_by_hand():
    # one agent, one state, two sampled actions (1-dim, uniform density 1/2), dataset Q 0.5:
    # logsumexp(1 + log 2, 2 + log 2) - 0.5 = log(e + e^2) + log 2 - 0.5
    out = cql_penalty(T([[[1.0, 2.0]]]), T([[0.5]]), T([-math.log(2.0)]))
    assert out.item() == pytest.approx(math.log(math.e + math.e ** 2) + math.log(2) - 0.5, abs=1e-6)
    assert out.item() == pytest.approx(2.506410, abs=1e-5)


def test_deterministic_actor_loss_by_hand():
    # -mean Q + l2 * mean over real dims of pi^2: -(1+3)/2 + 0.1 * (0.25 + 1)/2 ; the padded dim is ignored
    loss = deterministic_actor_loss(T([[1.0, 3.0]]), T([[[0.5, 9.0], [1.0, 9.0]]]), T([[1.0, 0.0]]), 0.1)
    assert loss.item() == pytest.approx(-1.9375)


def test_icql_update_losses_by_hand_with_padded_actions(cfg):
    """With every critic constant c, the update's losses are known in closed form:
    TD = sum over twins of mean (r + gamma c - c)^2 and CQL = 2 (log M + A_i log 2), with A_i each
    agent's *true* action count (world: 9, 5, 5, 5)."""
    h = hp(cfg, "icql", cql_alpha=2.0)
    algo = BACKBONES["icql"].build(WORLD, h, torch.device("cpu"), seed=0)
    c = 1.5
    for m in (algo.q1, algo.q2, algo.q1_t, algo.q2_t):
        constant_critic(m, c)
    b = batch_for(WORLD)
    out = algo.update(b)
    r = b["rewards"].T
    td = 2 * ((r + h.gamma * c - c) ** 2).mean(dim=1)                           # per agent
    cql = torch.tensor([2 * (math.log(h.cql_samples) + a * math.log(2)) for a in WORLD.action_dims])
    assert out["losses/td"].item() == pytest.approx(td.mean().item(), rel=1e-5)
    assert out["losses/cql"].item() == pytest.approx(cql.mean().item(), rel=1e-5)
    assert out["losses/critic"].item() == pytest.approx((td + 2.0 * cql).mean().item(), rel=1e-5)
    assert out["losses/q_data"].item() == pytest.approx(c)


def test_agents_learn_independently(cfg):
    """I-CQL and OMAR are independent learners: changing agent 1's rewards changes nothing of agent 0."""
    for name in ("icql", "omar"):
        b = batch_for(CN)
        b2 = {**b, "rewards": b["rewards"].clone()}
        b2["rewards"][:, 1] += 5.0
        p = []
        for batch in (b, b2):
            algo = BACKBONES[name].build(CN, hp(cfg, name), torch.device("cpu"), seed=0)
            algo.update(batch)
            p.append([x.detach().clone() for m in (algo.q1, algo.actor) for x in m.parameters()])
        assert all(torch.equal(x[0], y[0]) for x, y in zip(*p))      # agent 0: identical
        assert not all(torch.equal(x[1], y[1]) for x, y in zip(*p))  # agent 1: changed


def test_per_agent_gradient_clipping():
    w = torch.nn.Parameter(torch.zeros(2, 3))
    w.grad = T([[6.0, 8.0, 0.0], [0.06, 0.08, 0.0]])   # norms 10 and 0.1
    norms = clip_grad_norm_per_agent([w], 2, max_norm=1.0)
    assert torch.allclose(norms, T([10.0, 0.1]))
    assert torch.allclose(w.grad[0], T([0.6, 0.8, 0.0]), atol=1e-6)   # clipped to norm 1
    assert torch.allclose(w.grad[1], T([0.06, 0.08, 0.0]))             # untouched


def test_masked_mean_ignores_padding():
    x = torch.ones(2, 4, 3)
    x[1, :, 2] = 100.0   # padded dimension of agent 1
    assert torch.allclose(masked_mean(x, T([[1.0, 1, 1], [1, 1, 0]])), T([1.0, 1.0]))


# ---- OMAR -----------------------------------------------------------------------------------------

def test_softmax_refit_by_hand():
    # weights softmax(0, ln 3) = (1/4, 3/4): mu = 0.75; sigma = sqrt(((0 - .75)^2 + (1 - .75)^2) / 2)
    mu, sigma = softmax_refit(T([[[0.0, math.log(3.0)]]]), T([[[[0.0], [1.0]]]]))
    assert mu.item() == pytest.approx(0.75)
    assert sigma.item() == pytest.approx(math.sqrt(0.3125))


def test_better_of_keeps_the_policy_unless_a_sample_beats_it():
    q = T([[[1.0, 5.0], [1.0, 3.0]]])                       # N=1, B=2, M=2
    a = T([[[[0.1], [0.2]], [[0.3], [0.4]]]])
    out = better_of(q, a, q_pi=T([[3.0, 3.0]]), pi=T([[[0.9], [0.8]]]))
    assert torch.allclose(out, T([[[0.2], [0.8]]]))        # 5 > 3: best sample; 3 = 3: the policy


def test_omar_actor_loss_by_hand():
    loss, mimic = omar_actor_loss(T([[[0.5]]]), T([[[1.0]]]), T([[2.0]]), T([[1.0]]), tau=0.7, l2=0.1)
    assert mimic.item() == pytest.approx(0.25)
    assert loss.item() == pytest.approx(0.7 * 0.25 - 0.3 * 2.0 + 0.1 * 0.25)


def test_zeroth_order_optimiser_moves_towards_the_critics_maximum():
    """Q(a) = -|a - 0.4|^2: from a bad policy action the rectified target gets close to 0.4 and never
    scores below the policy; from the optimum itself the policy's action is kept."""
    q_fn = lambda o, a: -((a - 0.4) ** 2).sum(-1)
    N, B, A = 2, 64, 3
    mask = torch.ones(N, A)
    obs = torch.zeros(N, B, 1)
    gen = torch.Generator().manual_seed(0)
    bad = torch.full((N, B, A), -0.9)
    a_hat = zeroth_order_actions(q_fn, obs, bad, q_fn(obs, bad), mask, 3, 10, 0.0, 2.0, gen)
    assert (q_fn(obs, a_hat) >= q_fn(obs, bad)).all()
    assert (a_hat - 0.4).abs().mean() < 0.35 < (bad - 0.4).abs().mean()
    best = torch.full((N, B, A), 0.4)
    assert torch.equal(zeroth_order_actions(q_fn, obs, best, q_fn(obs, best), mask, 3, 10, 0.0, 2.0, gen), best)


def test_zeroth_order_samples_respect_padded_actions(cfg):
    q_fn = lambda o, a: a.sum(-1)     # rewards large actions: padding would be filled if not masked
    mask = torch.as_tensor(WORLD.action_mask())
    pi = torch.zeros(4, 16, 9)
    a_hat = zeroth_order_actions(q_fn, torch.zeros(4, 16, 1), pi, q_fn(None, pi), mask, 3, 10, 0.0, 2.0,
                                 torch.Generator().manual_seed(0))
    assert (a_hat[1:, :, 5:] == 0).all() and (a_hat[0] != 0).any()


# ---- MA-ICQ ---------------------------------------------------------------------------------------

def test_batch_weights_by_hand():
    # x = (0, 1): std 0.5, so softmax(0, 2) scaled by B = 2
    w = batch_weights(T([0.0, 1.0]), temperature=1.0)
    e2 = math.exp(2.0)
    assert torch.allclose(w, T([2 / (1 + e2), 2 * e2 / (1 + e2)]))
    assert torch.allclose(batch_weights(torch.full((5,), 3.0), 1.0), torch.ones(5))   # no spread: uniform


def test_expectile_loss_by_hand():
    assert torch.allclose(expectile_loss(T([-2.0, 1.0]), 0.7), T([2 * 0.3 * 4, 2 * 0.7 * 1]))
    assert torch.allclose(expectile_loss(T([-2.0, 1.0]), 0.5), T([4.0, 1.0]))          # squared error


def test_weighted_regression_by_hand():
    pi = T([[[1.0, 7.0], [0.0, 7.0]]])          # padded second dim differs wildly, must not count
    out = weighted_regression(pi, torch.zeros(1, 2, 2), T([[2.0, 1.0]]), T([[1.0, 0.0]]))
    assert out.item() == pytest.approx((2 * 1.0 + 1 * 0.0) / 2)


def test_linear_mixer_by_hand():
    mixer = LinearMixer(state_dim=3, hidden=4, n=2)
    with torch.no_grad():
        mixer.net[-1].weight.zero_()
        mixer.net[-1].bias.copy_(T([-1.0, 2.0, 0.5]))   # k = |(-1, 2)|, b = 0.5
    assert mixer(T([[3.0], [4.0]]), torch.randn(1, 3)).item() == pytest.approx(1 * 3 + 2 * 4 + 0.5)


@pytest.mark.parametrize("mixer", [True, False])
def test_maicq_update_by_hand(cfg, mixer):
    """Constant critics (and, with the mixer, constant k and b) make the implicit-constraint weights
    uniform, so the critic loss is the mean squared TD error of y = r + gamma * V(s', a')."""
    h = hp(cfg, "maicq", mixer=mixer)
    algo = BACKBONES["maicq"].build(CN, h, torch.device("cpu"), seed=0)
    c = 2.0
    constant_critic(algo.critic, c)
    constant_critic(algo.critic_t, c)
    b = batch_for(CN)
    if mixer:
        for m in (algo.mixer, algo.mixer_t):
            with torch.no_grad():
                m.net[-1].weight.zero_()
                m.net[-1].bias.copy_(T([1.0, 0.5, 2.0, -1.0]))   # k = (1, .5, 2), b = -1
        v = (1 + 0.5 + 2) * c - 1
        expected = ((b["team_rewards"] + h.gamma * v - v) ** 2).mean()
    else:
        expected = ((b["rewards"] + h.gamma * c - c) ** 2).mean()   # per agent, then averaged
    assert algo.update(b)["losses/critic"].item() == pytest.approx(expected.item(), rel=1e-5)


# ---- every backbone: checkpoints, acting, config errors --------------------------------------------

@pytest.mark.parametrize("nets", [{}, OMAR_NETWORKS], ids=["default-nets", "omar-nets"])
@pytest.mark.parametrize("name", CONTINUOUS)
def test_state_dict_round_trip_continues_identically(cfg, name, nets):
    """Also with input BatchNorm: its running statistics travel in the checkpoint, so a resumed
    run acts (eval mode, running statistics) and updates exactly as the uninterrupted one."""
    b = batch_for(WORLD, B=16)
    a1 = BACKBONES[name].build(WORLD, hp(cfg, name, **nets), torch.device("cpu"), seed=3)
    a1.update(b)
    a2 = BACKBONES[name].build(WORLD, hp(cfg, name, **nets), torch.device("cpu"), seed=99)
    saved = io.BytesIO()
    torch.save(a1.state_dict(), saved)     # as the training loop's checkpoint does
    saved.seek(0)
    a2.load_state_dict(torch.load(saved, weights_only=False))
    o1, o2 = a1.update(b), a2.update(b)       # same randomness after loading (CQL/OMAR samples)
    assert {k: v.item() for k, v in o1.items()} == {k: v.item() for k, v in o2.items()}
    obs = b["obs"][:5].numpy()
    act = a1.act(obs)
    assert act.shape == (5, 4, 9) and np.array_equal(act, a2.act(obs))
    assert (act[:, 1:, 5:] == 0).all() and np.abs(act).max() <= 1


def test_wrong_hyperparameter_type_names_the_field(cfg):
    cfg["backbones"]["omar"]["omar_iters"] = "three"
    with pytest.raises(ConfigError, match=r"backbones\.omar\.omar_iters.*must be of type int"):
        C.check(cfg)


def test_per_quality_value_needs_every_quality(cfg):
    cfg["backbones"]["icql"]["cql_alpha"] = {"expert": 5.0, "medium": 0.5}
    with pytest.raises(ConfigError, match=r"backbones\.icql\.cql_alpha.*random"):
        C.check(cfg)


def test_unknown_hyperparameter_and_algorithm_are_named(cfg):
    cfg["algorithms"]["omar"]["options"] = {"omar_taus": 0.5}
    with pytest.raises(ConfigError, match=r"algorithms\.omar\.options\.omar_taus.*not a hyper-parameter"):
        C.check(cfg)
    cfg["algorithms"]["omar"]["options"] = {}
    cfg["tiers"]["smoke"]["algos"].append("qmix")
    index = len(cfg["tiers"]["smoke"]["algos"]) - 1
    with pytest.raises(ConfigError, match=rf"tiers\.smoke\.algos\[{index}\].*qmix"):
        C.check(cfg)
    with pytest.raises(ConfigError, match="unknown algorithm 'qmix'"):
        C.train_job(cfg, "cn", "expert", "qmix", 0)


def test_job_rejects_wrongly_typed_hyperparameters(cfg):
    """A job is checked when it is built (or parsed from a rule's JSON), before any backbone exists."""
    cfg["tier"] = "smoke"
    job = C.train_job(cfg, "cn", "expert", "icql", 0)
    with pytest.raises(ConfigError, match=r"backbone_hp\.cql_samples.*must be of type int"):
        dataclasses.replace(job, backbone_hp={**job.backbone_hp, "cql_samples": 2.5})


def test_mixer_with_per_agent_rewards_is_rejected(cfg):
    cfg["algorithms"]["macca-icq"] = {"backbone": "maicq", "rewards": "causal"}
    with pytest.raises(ConfigError, match=r"algorithms\.macca-icq.*mixer: false"):
        C.check(cfg)
    cfg["algorithms"]["macca-icq"]["options"] = {"mixer": False}
    C.check(cfg)


def test_table4_values_reach_the_job(cfg):
    cfg["tier"] = "smoke"
    assert C.train_job(cfg, "cn", "expert", "omar", 0).backbone_config.omar_tau == 0.9
    assert C.train_job(cfg, "cn", "random", "omar", 0).backbone_config.omar_tau == 0.99
    assert C.train_job(cfg, "pp", "medium", "icql", 0).backbone_config.cql_alpha == 0.5
    assert C.train_job(cfg, "pp", "medium-replay", "omar", 0).backbone_hp["cql_alpha"] == 1.0


def test_tier_update_counts_and_overrides(cfg):
    cfg["tier"] = "paper"
    assert C.train_job(cfg, "cn", "expert", "omar", 0).updates == 2001          # 200k loop steps
    assert C.train_job(cfg, "cn", "random", "omar", 0).updates == 6001          # 600k for CN-random
    assert C.train_job(cfg, "pp", "medium-replay", "omar", 0).updates == 1001   # 100k for PP-medium-replay
    cfg["tiers"]["paper"]["train_updates_overrides"]["mars/random"] = 5
    with pytest.raises(ConfigError, match=r"train_updates_overrides\.mars/random.*unknown env"):
        C.check(cfg)


# ---- OMAR's network options: input BatchNorm, actors' last-layer initialisation --------------------

def test_agent_batchnorm_is_torch_batchnorm1d_per_agent():
    """Each agent's slice behaves as its own nn.BatchNorm1d with OMAR's (torch's default)
    momentum 0.1 and eps 1e-5: batch statistics and running-statistic updates in train mode,
    running statistics in eval mode."""
    g = torch.Generator().manual_seed(0)
    bn, ref = AgentBatchNorm(3, 4), [torch.nn.BatchNorm1d(4) for _ in range(3)]
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2.0, generator=g)
        bn.bias.normal_(generator=g)
        for i, r in enumerate(ref):
            r.weight.copy_(bn.weight[i])
            r.bias.copy_(bn.bias[i])
    scale = T([1.0, 5.0, 0.1])[:, None, None]           # agents with very different input scales
    for step in range(3):
        x = torch.randn(3, 64, 4, generator=g) * scale + step
        y = bn(x)
        for i, r in enumerate(ref):
            assert torch.allclose(y[i], r(x[i]), atol=1e-5)
    for i, r in enumerate(ref):
        assert torch.allclose(bn.running_mean[i], r.running_mean) and torch.allclose(bn.running_var[i], r.running_var)
    bn.eval()
    x = torch.randn(3, 7, 4, generator=g)
    for i, r in enumerate(ref):
        assert torch.allclose(bn(x)[i], r.eval()(x[i]), atol=1e-5)


def test_network_options_off_build_todays_networks_and_draw_no_extra_randomness(cfg):
    """input_norm off and actor_last_init 0 give exactly today's AgentMLP; turning input_norm on
    adds the BatchNorm without changing a single drawn weight."""
    off = hp(cfg, "omar", input_norm=False, actor_last_init=0.0)
    torch.manual_seed(5)
    today = AgentMLP(3, 18, off.hidden, 5, out_act="tanh")
    torch.manual_seed(5)
    built = stacked_actor(3, 18, 5, off)
    assert built.norm is None and today.state_dict().keys() == built.state_dict().keys()
    assert all(torch.equal(v, built.state_dict()[k]) for k, v in today.state_dict().items())
    torch.manual_seed(5)
    normed = stacked_actor(3, 18, 5, dataclasses.replace(off, input_norm=True))
    assert all(torch.equal(v, normed.state_dict()[k]) for k, v in today.state_dict().items())
    assert {"norm.running_mean", "norm.running_var", "norm.weight", "norm.bias"} <= normed.state_dict().keys()


def test_actor_last_layer_init_bound_and_critics_keep_the_default(cfg):
    """OMAR draws its actors' last-layer weights in +-3e-3 (biases and critics: default init)."""
    c = hp(cfg, "omar", **OMAR_NETWORKS)
    torch.manual_seed(0)
    actor, critic = stacked_actor(3, 18, 5, c), stacked_critic(3, 23, c)
    w = actor.layers[-1].weight
    assert w.abs().max() <= 3e-3 and w.abs().max() > 2e-3 and w.std() > 1e-3   # drawn, not zeroed
    default_bound = 1 / math.sqrt(c.hidden)
    assert actor.layers[-1].bias.abs().max() > 3e-3 and actor.layers[-1].bias.abs().max() <= default_bound
    assert critic.layers[-1].weight.abs().max() > 3e-3 and critic.layers[-1].weight.abs().max() <= default_bound


# forward passes per update on the same observations (each its own train-mode pass, as OMAR's code):
# I-CQL's Q^1: data batch, CQL samples, actor loss; OMAR adds omar_iters zeroth-order passes;
# MA-ICQ's critic: data batch and the two passes of the advantage weights.
CRITIC_PASSES = {"icql": lambda c: 3, "omar": lambda c: 3 + c.omar_iters, "maicq": lambda c: 3}


@pytest.mark.parametrize("name", CONTINUOUS)
def test_update_runs_every_pass_in_train_mode_and_act_in_eval_mode(cfg, name):
    """With input BatchNorm, an update moves the running statistics once per forward pass (each
    on its own batch: the CQL and zeroth-order samples are not concatenated with the data batch),
    target networks included (their statistics are their own, not soft-updated copies); `act`
    uses the running statistics, so an observation's action does not depend on its batch."""
    c = hp(cfg, name, **OMAR_NETWORKS)
    algo = BACKBONES[name].build(CN, c, torch.device("cpu"), seed=0)
    critic, critic_t = (algo.q1, algo.q1_t) if name != "maicq" else (algo.critic, algo.critic_t)
    b = batch_for(CN, B=64)
    algo.update(b)
    obs_mean, nobs_mean = agent_major(b["obs"]).mean(dim=1), agent_major(b["next_obs"]).mean(dim=1)
    k, O = CRITIC_PASSES[name](c), CN.obs_dim
    assert torch.allclose(critic.norm.running_mean[:, :O], (1 - 0.9 ** k) * obs_mean, atol=1e-5)
    assert torch.allclose(critic_t.norm.running_mean[:, :O], 0.1 * nobs_mean, atol=1e-5)
    actor_mean = 0.1 * obs_mean if name != "maicq" else 0.9 * 0.1 * nobs_mean + 0.1 * obs_mean  # MA-ICQ: pi(o') first
    assert torch.allclose(algo.actor.norm.running_mean, actor_mean, atol=1e-5)
    if name != "maicq":
        assert torch.allclose(algo.actor_t.norm.running_mean, 0.1 * nobs_mean, atol=1e-5)

    before = {k: v.clone() for k, v in algo.actor.state_dict().items()}
    obs = b["obs"][:9].numpy()
    batched = algo.act(obs)
    assert np.allclose(algo.act(obs[3:4]), batched[3:4], atol=1e-6)          # one observation, eval mode
    assert all(torch.equal(v, algo.actor.state_dict()[k]) for k, v in before.items())  # act changes nothing
    assert algo.actor.training                                               # and leaves train mode on
    with torch.no_grad():                                                    # train mode would differ
        train_mode = algo.pi(algo.actor, agent_major(b["obs"][:9])).transpose(0, 1).numpy()
    assert not np.allclose(train_mode, batched, atol=1e-3)


@pytest.mark.parametrize("name", CONTINUOUS)
def test_every_backbone_trains_with_omar_networks(cfg, name):
    """OMAR's network options on: a few updates on CN-shaped data give finite losses and actions."""
    algo = BACKBONES[name].build(CN, hp(cfg, name, **OMAR_NETWORKS), torch.device("cpu"), seed=1)
    for i in range(5):
        out = algo.update(batch_for(CN, B=128, seed=i))
        assert all(math.isfinite(v.item()) for v in out.values()), out
    act = algo.act(batch_for(CN, B=4)["obs"].numpy())
    assert np.isfinite(act).all() and np.abs(act).max() <= 1


def test_omar_bf16_zeroth_order_passes_stay_close_to_fp32(cfg):
    """Under bf16 autocast (`precision: bf16`) the zeroth-order critic passes' arithmetic changes: from
    the same networks and sampled actions, the rectified targets a_hat mostly equal the fp32 ones (a
    sample's rank may flip where two scores lie within bf16's rounding) and come back in fp32."""
    batch = batch_for(CN, B=256)
    obs = agent_major(batch["obs"])
    out = {}
    for precision in ("fp32", "bf16"):
        algo = BACKBONES["omar"].build(CN, hp(cfg, "omar", precision=precision, **OMAR_NETWORKS),
                                       torch.device("cpu"), seed=0)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            pi = algo.pi(algo.actor, obs)
            c = algo.cfg
            out[precision] = zeroth_order_actions(algo._score_samples, obs, pi, algo.q(algo.q1, obs, pi).float(),
                                                  algo.mask, c.omar_iters, c.omar_samples, c.omar_mu, c.omar_sigma,
                                                  algo.gen).float()
    same = (out["fp32"] - out["bf16"]).abs().amax(dim=-1) < 2e-2
    assert same.float().mean() > 0.9


@pytest.mark.parametrize("name", ["icql", "omar", "maicq"])
def test_bf16_update_matches_fp32_within_rounding(cfg, name):
    """`precision: bf16` runs the whole update under autocast: from the same networks and batch the
    losses agree with fp32 to bf16's precision, and the parameters stay fp32."""
    batch = batch_for(CN, B=256)
    losses = {}
    for precision in ("fp32", "bf16"):
        algo = BACKBONES[name].build(CN, hp(cfg, name, precision=precision), torch.device("cpu"), seed=0)
        out = algo.update({k: v.clone() for k, v in batch.items()})
        losses[precision] = {k: v.item() for k, v in out.items() if k in ("losses/critic", "losses/td", "losses/actor")}
        assert all(p.dtype == torch.float32 for p in algo.actor.parameters())
    for k, v in losses["fp32"].items():
        assert losses["bf16"][k] == pytest.approx(v, rel=0.05, abs=0.05), k
