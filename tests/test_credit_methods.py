"""The credit-assignment backbones (QMIX-CQL, SHAQ / SHAQ-CQL, SQDDPG): losses against
hand-computed values, QMIX's monotonicity, SHAQ's delta on greedy actions, available actions
respected everywhere, and real updates on a tiny discrete batch."""
import io
import math

import numpy as np
import pytest
import torch

from maccabench.envs.base import EnvSpec
from maccabench.errors import MaccabenchError
from maccabench.hparams import QMIXCQLConfig, SHAQConfig, SQDDPGConfig
from maccabench.nets import eval_mode
from maccabench.registry import ASSIGNERS, BACKBONES
from maccabench.algos.common import UNAVAILABLE, masked_logsumexp
from maccabench.algos.credit import QMixer, masked_softmax, predecessors, random_orderings, sample_available
from maccabench.algos.qmix_cql import chosen, next_values, qmix_cql_penalty
from maccabench.algos.shaq import ShapleyAlpha, coalition_means, per_agent_cql, shapley_q_tot, shapley_weights
from maccabench.algos.sqddpg import coalition_actions, own_slot

N, O, S, A, B = 3, 6, 8, 5, 64
STOP = 4   # the one action a dead SMAX unit has
SPEC = EnvSpec("tiny", "smax", "tiny", ("a0", "a1", "a2"), (O,) * N, (A,) * N, S, True, 100)
COMMON = dict(hidden=32, gamma=0.5, actor_lr=3e-3, critic_lr=3e-3, tau=0.05, grad_clip=10.0, input_norm=False,
              actor_last_init=0.0)
CONFIGS = {
    "qmix-cql": QMIXCQLConfig(**COMMON, mixer_embed=8, hypernet_embed=16, double_q=True, cql_alpha=0.5, cql_samples=20),
    "shaq": SHAQConfig(**COMMON, mixer_embed=8, hypernet_embed=16, double_q=True, coalition_samples=4, mixer_lr=1e-3,
                       cql_alpha=0.05),
    "sqddpg": SQDDPGConfig(**COMMON, coalition_samples=4, relax_temperature=1.0),
}


def tiny_batch(seed=0):
    """A discrete team-reward batch as the loop gives it (actions as the float the loop stores,
    team reward copied per agent); agent 0 is dead (only STOP available) in every row."""
    g = torch.Generator().manual_seed(seed)
    avail = torch.rand(B, N, A, generator=g) < 0.5
    avail[..., STOP] = True
    avail[:, 0] = False
    avail[:, 0, STOP] = True
    next_avail = torch.rand(B, N, A, generator=g) < 0.5
    next_avail[..., STOP] = True
    actions = torch.multinomial(avail.view(-1, A).float(), 1, generator=g).view(B, N)
    team = torch.rand(B, 1, generator=g)
    return {"obs": torch.randn(B, N, O, generator=g), "next_obs": torch.randn(B, N, O, generator=g),
            "actions": actions.float(), "avail_actions": avail, "next_avail_actions": next_avail,
            "state": torch.randn(B, S, generator=g), "next_state": torch.randn(B, S, generator=g),
            "rewards": team.expand(B, N), "team_rewards": team[:, 0],
            "terminals": (torch.rand(B, generator=g) < 0.1).float()}


def build(name, seed=0):
    return BACKBONES[name].build(SPEC, CONFIGS[name], torch.device("cpu"), seed)


# ---- available actions ---------------------------------------------------------------------------

def test_masked_ops_with_a_single_available_action_are_finite_and_exact():
    q = torch.tensor([[3.0, -1.0, 7.0], [0.5, 2.0, -4.0]], requires_grad=True)
    avail = torch.tensor([[False, True, False], [True, True, True]])
    lse = masked_logsumexp(q, avail)
    assert lse[0].item() == pytest.approx(-1.0)          # only action 1: its own value
    assert lse[1].item() == pytest.approx(math.log(math.exp(0.5) + math.exp(2.0) + math.exp(-4.0)))
    p = masked_softmax(q, avail)
    assert torch.equal(p[0], torch.tensor([0.0, 1.0, 0.0]))
    lse.sum().backward()
    assert torch.isfinite(q.grad).all() and q.grad[0, 0] == 0 and q.grad[0, 2] == 0


def test_sampled_actions_are_available_and_uniform_over_them():
    avail = torch.tensor([[True, False, True, True, False], [False, False, False, False, True]])
    s = sample_available(avail, 30_000, torch.Generator().manual_seed(0))
    assert (s[1] == STOP).all()
    counts = torch.bincount(s[0], minlength=5).float() / 30_000
    assert counts[1] == 0 and counts[4] == 0
    assert torch.allclose(counts[[0, 2, 3]], torch.full((3,), 1 / 3), atol=0.02)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_act_chooses_available_actions_only(name):
    bb = build(name)
    for _ in range(5):   # move the networks off their initialisation
        bb.update(tiny_batch(1))
    batch = tiny_batch(2)
    obs, avail = batch["obs"].numpy(), batch["avail_actions"].numpy()
    a = bb.act(obs, avail)
    assert a.shape == (B, N) and a.dtype == np.int64
    assert np.take_along_axis(avail, a[..., None], -1).all()
    assert (a[:, 0] == STOP).all()
    # where every action is available, the choice is the unrestricted argmax of the scores
    full = np.ones_like(avail)
    with torch.no_grad(), eval_mode(bb.acting):
        scores = bb.acting(torch.as_tensor(obs).transpose(0, 1)).transpose(0, 1).numpy()
    assert (bb.act(obs, full) == scores.argmax(-1)).all()


def test_next_values_take_the_greedy_available_action():
    q_next = torch.tensor([[[5.0, 1.0, 2.0]]])       # [N=1, B=1, A=3]: best overall is unavailable
    q_target = torch.tensor([[[10.0, 20.0, 30.0]]])
    avail = torch.tensor([[[False, True, True]]])
    assert next_values(q_next, q_target, avail).item() == 30.0   # double Q: argmax by q_next -> 2
    assert next_values(q_target, q_target, avail).item() == 30.0


# ---- QMIX-CQL --------------------------------------------------------------------------------------

def test_qmix_cql_penalty_hand_computed():
    q_tot_sampled = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    q_tot_data = torch.tensor([1.0, 0.0])
    # row 0: log(e + e^2) - 1 = log(1 + e); row 1: log 2
    want = (math.log(1 + math.e) + math.log(2.0)) / 2
    assert qmix_cql_penalty(q_tot_sampled, q_tot_data).item() == pytest.approx(want)


def test_chosen_gathers_per_agent_values():
    q = torch.arange(2 * 2 * 3, dtype=torch.float32).view(2, 2, 3)
    assert chosen(q, torch.tensor([[0, 2], [1, 1]])).tolist() == [[0.0, 5.0], [7.0, 10.0]]
    assert chosen(q, torch.tensor([[[0, 1], [2, 2]], [[0, 0], [1, 2]]])).tolist() == \
        [[[0.0, 1.0], [5.0, 5.0]], [[6.0, 6.0], [10.0, 11.0]]]


def test_qmix_mixer_is_monotone_in_every_agent_value():
    torch.manual_seed(0)
    mixer = QMixer(S, N, 8, 16)
    for p in mixer.parameters():        # large random weights of either sign
        torch.nn.init.normal_(p, std=2.0)
    q = torch.randn(500, N, requires_grad=True) * 5
    q.retain_grad()
    state = torch.randn(500, S) * 3
    mixer(q, state).sum().backward()    # row b of Q_tot depends on row b of q only
    assert (q.grad >= 0).all() and (q.grad > 0).any()
    # the sampled form ([B, M, N]) is the same function
    qs = torch.randn(4, 7, N)
    st = torch.randn(4, S)
    each = torch.stack([mixer(qs[:, m], st) for m in range(7)], dim=1)
    assert torch.allclose(mixer(qs, st), each, atol=1e-5)


def test_qmix_cql_update_reports_its_losses_from_its_networks():
    bb = build("qmix-cql")
    batch = tiny_batch()
    act = batch["actions"].long().T
    with torch.no_grad():
        obs, nobs = batch["obs"].transpose(0, 1), batch["next_obs"].transpose(0, 1)
        q_tot = bb.mixer(chosen(bb.q(obs), act).T, batch["state"])
        nxt = next_values(bb.q(nobs), bb.q_t(nobs), batch["next_avail_actions"].transpose(0, 1))
        y = batch["team_rewards"] + 0.5 * (1 - batch["terminals"]) * bb.mixer_t(nxt.T, batch["next_state"])
        td = 0.5 * (q_tot - y).pow(2).mean()
    stats = bb.update(batch)
    assert stats["losses/td"].item() == pytest.approx(td.item(), rel=1e-5)
    assert stats["losses/critic"].item() == pytest.approx(td.item() + 0.5 * stats["losses/cql"].item(), rel=1e-5)
    assert stats["losses/cql"].item() > 0    # logsumexp over 20 samples exceeds the data's Q_tot here


# ---- SHAQ ------------------------------------------------------------------------------------------

def test_shapley_weights_and_q_tot_hand_computed():
    q = torch.tensor([[1.0, 2.0, 3.0]])
    is_greedy = torch.tensor([[True, False, True]])
    alpha = torch.tensor([[1.7, 1.5, 2.0]])
    delta = shapley_weights(is_greedy, alpha)
    assert delta.tolist() == [[1.0, 1.5, 1.0]]
    assert shapley_q_tot(q, delta).item() == pytest.approx(1 + 3 + 3)


def test_coalition_means_hand_computed():
    q = torch.tensor([[1.0, 2.0, 4.0]])
    positions = torch.tensor([[[0, 1, 2], [2, 0, 1]]])   # order 0,1,2 and order 1,2,0
    means = coalition_means(q, positions)
    assert means.tolist() == [[[0.0, 1.0, 1.5], [3.0, 0.0, 2.0]]]
    assert predecessors(positions, include_self=True)[0, 1].tolist() == [[1, 1, 1], [0, 1, 0], [0, 1, 1]]


def test_random_orderings_are_permutations():
    pos = random_orderings(50, 6, 5, torch.Generator().manual_seed(0), "cpu")
    assert (pos.sort(dim=-1).values == torch.arange(5)).all()


def test_per_agent_cql_hand_computed_over_available_actions():
    q = torch.tensor([[[1.0, 2.0, 9.0]], [[0.0, 0.0, 5.0]]])      # [N=2, B=1, A=3]
    avail = torch.tensor([[[True, True, False]], [[False, False, True]]])
    q_data = torch.tensor([[1.0], [5.0]])
    # agent 0: log(e + e^2) - 1 = log(1 + e); agent 1 (one action): 5 - 5 = 0
    assert per_agent_cql(q, q_data, avail).item() == pytest.approx(math.log(1 + math.e))


def test_shaq_alpha_is_at_least_one():
    torch.manual_seed(0)
    net = ShapleyAlpha(S, 8, 16)
    pos = random_orderings(32, 4, N, None, "cpu")
    assert (net(torch.randn(32, N) * 10, torch.randn(32, S), pos) >= 1).all()


def test_shaq_delta_is_one_on_greedy_actions():
    bb = build("shaq")
    batch = tiny_batch()
    obs = batch["obs"].transpose(0, 1)
    avail = batch["avail_actions"].transpose(0, 1)
    with torch.no_grad():
        q = bb.q(obs)
        greedy_act = q.masked_fill(~avail, UNAVAILABLE).argmax(-1)
        q_tot, is_greedy, _ = bb.mix(q, greedy_act, avail, batch["state"])
        assert is_greedy.all()
        assert torch.allclose(q_tot, chosen(q, greedy_act).sum(0))
        # the dataset's actions: non-greedy agents weighted by alpha >= 1
        act = batch["actions"].long().T
        q_tot, is_greedy, alpha = bb.mix(q, act, avail, batch["state"])
        q_data = chosen(q, act).T
        assert not is_greedy.all()
        assert torch.allclose(q_tot, (torch.where(is_greedy, 1.0, alpha) * q_data).sum(-1))


# ---- SQDDPG ------------------------------------------------------------------------------------------

def test_coalition_actions_and_own_slot_hand_computed():
    joint = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])               # [B=1, N=2, A=2]
    own = torch.tensor([[[0.3, 0.7]], [[0.6, 0.4]]])                # [N_i=2, B=1, A=2]
    view = own_slot(joint, own)                                     # agent i's slot replaced by own[i]
    assert torch.allclose(view[0, 0], torch.tensor([[0.3, 0.7], [0.0, 1.0]]))
    assert torch.allclose(view[1, 0], torch.tensor([[1.0, 0.0], [0.6, 0.4]]))
    positions = torch.tensor([[[1, 0]]])                            # agent 1 first, then agent 0
    acts = coalition_actions(view, positions)                       # [N_i, B, K, N_j * A]
    assert acts[0, 0, 0].tolist() == pytest.approx([0.3, 0.7, 0.0, 1.0])   # agent 0: {1, 0}
    assert acts[1, 0, 0].tolist() == pytest.approx([0.0, 0.0, 0.6, 0.4])   # agent 1: {1} alone


def test_sqddpg_shapley_q_is_the_mean_of_marginal_contributions_over_orderings():
    bb = build("sqddpg")
    batch = tiny_batch()
    joint = torch.nn.functional.one_hot(batch["actions"].long(), A).float()[None].expand(N, -1, -1, -1)
    state = bb.gen.get_state()
    with torch.no_grad():
        q = bb.shapley_q(bb.critic, batch["state"], joint)
        bb.gen.set_state(state)
        pos = random_orderings(B, 4, N, bb.gen, "cpu")
        acts = coalition_actions(joint, pos)                         # [N, B, K, N*A]
        x = torch.cat([batch["state"][None, :, None].expand(N, B, 4, S), acts], -1).reshape(N, B * 4, -1)
        want = bb.critic(x).view(N, B, 4).mean(-1)
    assert torch.allclose(q, want, atol=1e-5)


# ---- registry, updates ---------------------------------------------------------------------------

def test_registry_entries_are_discrete_and_refuse_per_agent_rewards_and_continuous_envs():
    for name in CONFIGS:
        entry = BACKBONES[name]
        assert entry.impl is None and entry.discrete_impl is not None   # discrete-only
        assert entry.check_rewards(CONFIGS[name], ASSIGNERS["team"].shared) is None
        assert "team" in entry.check_rewards(CONFIGS[name], ASSIGNERS["causal"].shared)
        continuous = EnvSpec("cn", "mpe", "cn", ("a0",), (4,), (2,), 4, False, 25)
        with pytest.raises(MaccabenchError, match="discrete"):
            entry.build(continuous, CONFIGS[name], torch.device("cpu"), 0)
    assert BACKBONES["omar"].impl is not None


@pytest.mark.parametrize("name", list(CONFIGS))
def test_updates_reduce_the_td_loss_and_give_finite_stats(name):
    torch.manual_seed(0)
    bb = build(name)
    batch = tiny_batch()
    first = bb.update(batch)
    for _ in range(150):
        last = bb.update(batch)
    assert all(torch.isfinite(torch.as_tensor(v)).all() for s in (first, last) for v in s.values())
    assert last["losses/td"] < 0.5 * first["losses/td"]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_checkpoint_round_trip_gives_the_same_next_update(name):
    a, b = build(name, seed=0), build(name, seed=1)
    batch = tiny_batch()
    a.update(batch)
    saved = io.BytesIO()       # through torch.save as ckpt.pt (Adam's loaded state would share a's tensors)
    torch.save(a.state_dict(), saved)
    saved.seek(0)
    b.load_state_dict(torch.load(saved, weights_only=False))
    for _ in range(2):
        sa, sb = a.update(batch), b.update(batch)
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
