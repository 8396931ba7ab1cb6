"""The reward assigners that separate credit assignment from reward scale (maccabench.rewards,
DESIGN.md "Controls"): R / N for every agent, a credit-free random split of R, and MACCA's
rewards times N, each built as the training loop builds it (registry -> RewardContext)."""
import copy

import pytest
import torch

from maccabench import config as C
from maccabench.causal import CausalRewardModel
from maccabench.envs.base import EnvSpec
from maccabench.errors import ConfigError
from maccabench.hparams import CausalConfig, at_quality, parse_hp
from maccabench.registry import ASSIGNERS
from maccabench.rewards import RewardContext, make_assigner

N, O, A = 3, 4, 2
SPEC = EnvSpec(env="synthetic", suite="synthetic", task="controls", agents=("a0", "a1", "a2"),
               obs_dims=(O,) * N, action_dims=(A,) * N, state_dim=N * O, discrete=False, episode_limit=25)


def build(name: str, seed: int = 0, config=None):
    return make_assigner(name, RewardContext(SPEC, config, torch.device("cpu"), seed, dataset=None))


def batch(b: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"state": torch.rand(b, N * O, generator=g) * 2 - 1, "actions": torch.rand(b, N, A, generator=g) * 2 - 1,
            "team_rewards": torch.randn(b, generator=g) * 5}


# ---- (a), (b): the team reward and R / N ----------------------------------------------------------------

def test_team_mean_hands_every_agent_the_team_reward_over_n():
    b = batch()
    r = b["team_rewards"]
    assert torch.equal(build("team").assign(b), r.unsqueeze(1).expand(-1, N))   # (a) unchanged: R itself
    mean = build("team_mean").assign(b)
    assert mean.shape == (64, N)
    torch.testing.assert_close(mean, (r / N).unsqueeze(1).expand(-1, N))
    torch.testing.assert_close(mean.sum(dim=1), r)     # like MACCA's rewards, they sum to R
    assert ASSIGNERS["team_mean"].shared and not ASSIGNERS["team_mean"].reads_raw


# ---- (f): a random split of R ---------------------------------------------------------------------------

def test_random_split_sums_to_the_team_reward_per_sample_and_is_a_non_negative_split():
    b = batch(256)
    r = b["team_rewards"]
    split = build("random_split").assign(b)
    assert split.shape == (256, N)
    torch.testing.assert_close(split.sum(dim=1), r)
    fractions = split / r.unsqueeze(1)
    assert (fractions >= 0).all() and (fractions <= 1 + 1e-6).all()
    assert not ASSIGNERS["random_split"].shared and not ASSIGNERS["random_split"].reads_raw


def test_random_split_differs_between_samples_and_between_updates():
    b = {"team_rewards": torch.ones(500)}     # the same R everywhere: any difference is the split's
    split = build("random_split")
    first, second = split.assign(b), split.assign(b)
    assert first.std(dim=0).min() > 0.1                        # samples get different splits
    assert (first - second).abs().max(dim=1).values.min() > 0  # every sample gets a fresh split each update


def test_random_split_is_dirichlet_one():
    """Dirichlet(1, 1, 1): each share has mean 1/3 and is Beta(1, 2), so P(share > 1/2) = (1/2)^2."""
    w = build("random_split").assign({"team_rewards": torch.ones(40_000)})
    assert w.mean(dim=0).numpy() == pytest.approx([1 / 3] * N, abs=0.01)
    assert (w > 0.5).float().mean(dim=0).numpy() == pytest.approx([0.25] * N, abs=0.01)


def test_random_split_is_deterministic_per_seed_and_across_a_resume():
    b = batch(32)
    a, same, other = build("random_split", seed=3), build("random_split", seed=3), build("random_split", seed=4)
    assert torch.equal(a.assign(b), same.assign(b))
    assert not torch.equal(a.assign(b), other.assign(b))
    # a resume: the checkpoint carries the assigner's state; a fresh assigner loaded from it
    # draws what the interrupted one would have drawn next
    uninterrupted = build("random_split", seed=3)
    for _ in range(5):
        uninterrupted.assign(b)
    state = copy.deepcopy(uninterrupted.state_dict())
    expected = [uninterrupted.assign(b) for _ in range(3)]
    resumed = build("random_split", seed=3)
    resumed.load_state_dict(state)
    assert all(torch.equal(resumed.assign(b), e) for e in expected)


def test_random_split_cannot_feed_a_team_mixer(cfg):
    """MA-ICQ's mixer regresses Q_tot on R: a per-agent split would be summed back."""
    cfg["algorithms"]["maicq-split"] = {"backbone": "maicq", "rewards": "random_split"}
    with pytest.raises(ConfigError, match=r"algorithms\.maicq-split.*mixer"):
        C.check(cfg)


# ---- (e): MACCA's rewards times N -----------------------------------------------------------------------

SMALL = {"hidden": 32, "layers": 2, "lr": 3e-3, "updates_per_step": 1}


def causal_config(base_config, **hp) -> CausalConfig:
    return parse_hp(CausalConfig, {**at_quality(base_config["causal"], "expert"), **SMALL, **hp}, "causal")


def test_macca_times_n_is_n_times_maccas_rewards_from_the_same_model(base_config):
    torch.set_num_threads(1)
    macca = CausalRewardModel(SPEC, causal_config(base_config), "cpu", seed=0)
    scaled = CausalRewardModel(SPEC, causal_config(base_config, times_n_agents=True), "cpu", seed=0)
    for k in range(20):
        b = batch(128, seed=k)
        stats, stats_scaled = macca.update(b), scaled.update(b)
        assert stats == stats_scaled                 # one model: it fits R the same way
    b = batch(256, seed=99)
    r, r_scaled = macca.assign(b), scaled.assign(b)
    torch.testing.assert_close(r_scaled, N * r)
    torch.testing.assert_close(r_scaled.sum(dim=1), N * r.sum(dim=1))
    assert r.abs().sum() > 0


def test_the_scale_controls_are_algorithms_of_both_backbones(base_config):
    """The credit table's six rewards exist for OMAR and I-CQL, and only the x N entries change
    the causal model's options (every other MACCA run's job is as it was)."""
    cfg = C.check(copy.deepcopy({**base_config, "tier": "smoke"}))
    for backbone, macca in (("omar", "macca-omar"), ("icql", "macca-cql")):
        rewards = {a: cfg["algorithms"][a]["rewards"] for a in cfg["tables"]["credit"]["algos"]
                   if cfg["algorithms"][a]["backbone"] == backbone}
        assert sorted(rewards.values()) == sorted(["team", "team_mean", "ground_truth", "causal", "causal", "random_split"])
        assert C.reward_config(cfg, f"{macca}-xn", "expert").times_n_agents
        assert not C.reward_config(cfg, macca, "expert").times_n_agents
        assert "times_n_agents" not in C.reward_hp(cfg, macca, "expert")
