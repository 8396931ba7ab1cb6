"""OMAR for discrete actions (SMAX): I-CQL's discrete critics (icql_discrete.py) and a categorical
policy per agent with OMAR's actor rectification (Pan et al. 2022, eq. 8 of the MACCA paper).

The policy pi_i(. | o_i) is a softmax over agent i's *available* actions. Its loss is OMAR's,

    (1 - tau) * ( - sum_{b in avail} pi_i(b | o) Q_i^1(o, b) )  +  tau * ( - log pi_i(a_hat | o) )
    a_hat = argmax_{b in avail} Q_i^1(o, b)

with tau the paper's "OMAR tau" (`omar_tau`, Table 4). The first term is the policy gradient of
the expected Q, exact over the available actions (the continuous actor's -Q(o, pi(o))). The second
is the rectification: OMAR's zeroth-order search for an action better than the policy's becomes an
exact argmax of Q^1 over the available actions, and its squared distance to that action becomes
the cross-entropy towards it. The argmax is never worse than the policy's expected Q, so OMAR's
"keep pi(o) when no sample beats it" never applies. Evaluation acts greedily on the policy over
the available actions. The zeroth-order options (`omar_iters`, `omar_samples`, `omar_mu`,
`omar_sigma`) and `actor_l2` are unused (docs/discrete.md).
"""
from __future__ import annotations

import torch

from .common import clip_grad_norm_per_agent, masked_argmax, masked_log_softmax, take
from .icql_discrete import DiscreteICQL


def discrete_omar_actor_loss(logp: torch.Tensor, q: torch.Tensor, avail: torch.Tensor,
                             tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-agent [N] loss (1 - tau) * (-E_pi Q) + tau * (-log pi(argmax_avail Q)), and the mimic
    (cross-entropy) term [N]. logp [N, B, A] (masked log-softmax: pi is 0 at unavailable actions);
    q [N, B, A], no gradient; avail [N, B, A]."""
    expected_q = (logp.exp() * q).sum(dim=-1)                                            # [N, B]
    mimic = -take(logp, masked_argmax(q, avail)).mean(dim=-1)
    return (1 - tau) * -expected_q.mean(dim=-1) + tau * mimic, mimic


class DiscreteOMAR(DiscreteICQL):
    """Discrete I-CQL with OMAR's rectified categorical actor; its config is an `hparams.OMARConfig`."""
    has_actor = True

    def actor_step(self, obs: torch.Tensor, avail: torch.Tensor) -> dict:
        """One step of the policies on Q^1 as the critic step left it."""
        with torch.no_grad():
            q = self.q1(obs).float()    # fp32 scores under bf16 autocast, as continuous OMAR's search
        logp = masked_log_softmax(self.actor(obs), avail)
        loss, mimic = discrete_omar_actor_loss(logp, q, avail, self.cfg.omar_tau)
        self.actor_opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        clip_grad_norm_per_agent(list(self.actor.parameters()), self.n, self.cfg.grad_clip)
        self.actor_opt.step()
        return {"losses/actor": loss.detach().mean(), "losses/omar_mimic": mimic.detach().mean()}
