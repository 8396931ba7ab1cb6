"""`AgentMLP.forward_sampled` (the first layer's state part once per state) against the straightforward
formulation it replaces: the network on the states repeated M times beside their sampled actions."""
import pytest
import torch

from maccabench.nets import AgentMLP


def explicit(net, state, samples):
    """The network on cat([state repeat_interleave'd M times, samples]) -> [N, B, M, d_out]."""
    N, B, M, A = samples.shape
    x = torch.cat([state.repeat_interleave(M, dim=1), samples.reshape(N, B * M, A)], dim=-1)
    return net(x).view(N, B, M, -1)


@pytest.mark.parametrize("input_norm", [False, True])
@pytest.mark.parametrize("out_act", [None, "tanh"])
def test_forward_sampled_equals_the_repeated_input(input_norm, out_act):
    torch.manual_seed(0)
    N, B, M, S, A = 3, 16, 10, 7, 4
    net = AgentMLP(N, S + A, 32, 2, out_act=out_act, input_norm=input_norm).double()
    twin = AgentMLP(N, S + A, 32, 2, out_act=out_act, input_norm=input_norm).double()
    twin.load_state_dict(net.state_dict())
    state = torch.randn(N, B, S, dtype=torch.float64) * 3 + 1
    samples = torch.rand(N, B, M, A, dtype=torch.float64) * 2 - 1
    weights = torch.randn(N, B, M, 2, dtype=torch.float64)     # a loss that weighs every output differently

    out = net.forward_sampled(state, samples)
    ref = explicit(twin, state, samples)
    assert out.shape == (N, B, M, 2)
    assert torch.allclose(out, ref, rtol=1e-10, atol=1e-12)
    (out * weights).sum().backward()
    (ref * weights).sum().backward()
    for (name, p), q in zip(net.named_parameters(), twin.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-9, atol=1e-12), name
    for (name, b), c in zip(net.named_buffers(), twin.buffers()):   # BatchNorm's running statistics
        assert torch.allclose(b, c, rtol=1e-10, atol=1e-12), name
    if input_norm:
        assert not torch.allclose(net.norm.running_mean, torch.zeros_like(net.norm.running_mean))
        net.eval(), twin.eval()                                     # and on the running statistics
        with torch.no_grad():
            assert torch.allclose(net.forward_sampled(state, samples), explicit(twin, state, samples), rtol=1e-10)


def test_icql_cql_term_equals_the_repeated_input(cfg):
    """The CQL penalty of an I-CQL update (OMAR's networks: input BatchNorm) from the factored
    critic passes equals the one computed on the explicitly repeated batch, values and gradients."""
    import dataclasses

    from maccabench import config as C
    from maccabench.algos.common import OMAR_NETWORKS, agent_major
    from maccabench.algos.icql import cql_penalty
    from maccabench.registry import BACKBONES
    from test_algos import CN, batch_for

    h = dataclasses.replace(C.backbone_config(cfg, "icql", "medium"), **OMAR_NETWORKS)
    algo = BACKBONES["icql"].build(CN, h, torch.device("cpu"), seed=0)
    for m in (algo.q1, algo.q2):
        m.double()
    algo.mask, algo.log_density = algo.mask.double(), algo.log_density.double()
    obs = agent_major(batch_for(CN, B=32)["obs"]).double()
    act = agent_major(batch_for(CN, B=32, seed=1)["actions"]).double()
    params = [*algo.q1.parameters(), *algo.q2.parameters()]

    def grads(loss):
        return torch.autograd.grad(loss.sum(), params)

    q1, q2 = algo.q(algo.q1, obs, act), algo.q(algo.q2, obs, act)
    state = algo.gen.get_state()
    fast = algo.cql_terms(obs, q1, q2)
    fast_grads = grads(fast)

    algo.gen.set_state(state)                            # the same sampled actions, drawn as cql_terms draws them
    N, B, _ = obs.shape
    M, A = h.cql_samples, CN.action_dim
    rand = ((torch.rand(N, B, M, A, generator=algo.gen) * 2 - 1) * algo.mask[:, None, None]).double()
    o = obs.repeat_interleave(M, dim=1)
    q1, q2 = algo.q(algo.q1, obs, act), algo.q(algo.q2, obs, act)
    ref = sum(cql_penalty(algo.q(q, o, rand.reshape(N, B * M, A)).view(N, B, M), qd, algo.log_density)
              for q, qd in ((algo.q1, q1), (algo.q2, q2)))
    assert torch.allclose(fast, ref, rtol=1e-10)
    for g, r in zip(fast_grads, grads(ref)):
        assert torch.allclose(g, r, rtol=1e-8, atol=1e-12)


def test_value_head_gradients_match_baddbmm():
    """A one-output layer (critics' value head, its own autograd path) against torch.baddbmm."""
    from maccabench.nets import AgentLinear
    torch.manual_seed(0)
    layer = AgentLinear(3, 8, 1).double()
    x = torch.randn(3, 20, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))
    y, ref = layer(x), torch.baddbmm(layer.bias, x, layer.weight)
    assert torch.allclose(y, ref)
    g = torch.randn_like(y)
    assert all(torch.allclose(a, b) for a, b in zip(torch.autograd.grad(y, (x, *layer.parameters()), g),
                                                     torch.autograd.grad(ref, (x, *layer.parameters()), g)))
