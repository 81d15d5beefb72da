"""An exact "model": the Bayes conditionals p_data(x^i | unmasked tokens) of a small L&O law."""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

from lohard.lo._distribution import LODistribution

#: Largest number of latent configurations m^N enumerated (memory ~ B * m^N * P floats).
MAX_ORACLE_STATES = 1 << 12


class ExactOracle(nn.Module):
    r"""Exact denoiser :math:`p_{\mathrm{data}}(x^i \mid x_t)` by enumerating the latents.

    It has the interface of :class:`~lohard.mdm.MaskedDiffusionTransformer`
    (``forward(tokens) -> logits``, ``vocab_size``, ``mask_id``, ``max_seq_len``),
    so losses and samplers can run on it: with one token unmasked per step every
    sampler then draws exactly from p_data, which the sampler tests check.

    Parameters
    ----------
    dist : LODistribution
        Table or slab kind, with at most ``MAX_ORACLE_STATES`` latent configurations.

    Notes
    -----
    For each sequence, the posterior weight of latent configuration x is
    :math:`\pi(x) \prod_{\text{unmasked latents}} 1[x_i = t_i]
    \prod_{\text{unmasked obs}} P(o_j = t_j \mid x)`; masked latents get the
    weighted marginals, masked observations the weighted predictive
    :math:`\sum_x w(x) P(o_j = v \mid x)`, trailing constants a point mass.
    Unmasked positions get a point mass on their value. Cost O(B m^N P V),
    computed in float64. Inconsistent inputs (zero total weight) raise ValueError.
    """

    def __init__(self, dist: LODistribution) -> None:
        super().__init__()
        states = dist.m ** dist.n_latent
        if states > MAX_ORACLE_STATES:
            raise ValueError(f"the exact oracle enumerates m^N = {states} latent "
                             f"configurations, more than MAX_ORACLE_STATES = "
                             f"{MAX_ORACLE_STATES}")
        self.dist = dist
        self.vocab_size = dist.vocab_size
        self.mask_id = dist.mask_id
        self.max_seq_len = dist.length
        xs = np.array(list(itertools.product(range(dist.m), repeat=dist.n_latent)),
                      dtype=np.int64)
        self.register_buffer("xs", torch.from_numpy(xs))
        self.register_buffer("prior", torch.from_numpy(np.prod(dist.prior[xs], axis=1)))
        probs = dist.observation_probs(xs)  # (S, P, V_obs)
        self.register_buffer("obs_probs", torch.from_numpy(np.ascontiguousarray(probs)))
        self.register_buffer("lat_pos", torch.from_numpy(dist.latent_positions.copy()))
        self.register_buffer("obs_pos", torch.from_numpy(dist.observed_positions.copy()))
        self.register_buffer("trail_pos", torch.from_numpy(dist.trailing_positions.copy()))
        self.register_buffer("trail_val", torch.from_numpy(dist.trailing.copy()))

    def probs(self, tokens: torch.Tensor) -> torch.Tensor:
        """Conditional laws at every position: float64 tensor, shape (B, L, V)."""
        d, v = self.dist, self.vocab_size
        b = tokens.shape[0]
        if tokens.shape[1] != d.length:
            raise ValueError(f"tokens must have length L = {d.length}, got {tokens.shape[1]}")
        masked = tokens == self.mask_id
        lat, obs = tokens[:, self.lat_pos], tokens[:, self.obs_pos]
        lat_m, obs_m = masked[:, self.lat_pos], masked[:, self.obs_pos]
        # (B, S): unmasked latents agree with configuration s.
        agree = ((self.xs[None] == lat[:, None]) | lat_m[:, None]).all(dim=2)
        w = self.prior[None] * agree
        if d.n_obs:
            vals = obs.clamp(max=d.n_obs_values - 1)
            # (B, S, P): P(o_j = token_j | x_s), 1 where the observation is masked.
            lik = self.obs_probs.permute(1, 2, 0)[torch.arange(d.n_obs, device=tokens.device)[
                None, :], vals].permute(0, 2, 1)
            bad = (obs > d.n_obs_values - 1) & ~obs_m
            lik = torch.where(obs_m[:, None, :], 1.0, lik) * ~bad[:, None, :]
            w = w * lik.prod(dim=2)
        z = w.sum(dim=1, keepdim=True)
        if bool((z <= 0).any()):
            raise ValueError("the unmasked tokens have probability 0 under the distribution")
        w = w / z
        out = torch.zeros(b, d.length, v, dtype=torch.float64, device=tokens.device)
        onehot = torch.nn.functional.one_hot(self.xs, v).double()  # (S, N, V)
        out[:, self.lat_pos] = torch.einsum("bs,snv->bnv", w, onehot)
        if d.n_obs:
            out[:, self.obs_pos, : d.n_obs_values] = torch.einsum("bs,spv->bpv", w,
                                                                   self.obs_probs)
        if self.trail_pos.numel():
            out[:, self.trail_pos] = torch.nn.functional.one_hot(self.trail_val, v).double()
        known = torch.nn.functional.one_hot(tokens.clamp(max=v - 1), v).double()
        return torch.where(masked[..., None], out, known)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits log p(x^i = v | tokens), -inf where the probability is 0: (B, L, V)."""
        with torch.no_grad():
            return torch.log(self.probs(tokens)).float()


class PosteriorOracle(nn.Module):
    r"""Exact denoiser by component-wise enumeration, for L&O laws too large for
    :class:`ExactOracle`.

    The same interface as :class:`ExactOracle`; the conditionals come from
    :func:`lohard.lo.exact_posterior`, which splits the masked latents into the
    components linked by unmasked observations and enumerates each one alone. Its cost
    is set by the largest component, not by m^N, so it serves N ~ 20-30 binary
    latents whenever the unmasked observations leave the components small.

    Parameters
    ----------
    dist : LODistribution
        Table or slab kind.
    max_states : int
        Largest component enumerated (m^{|component|}); a larger one raises
        ValueError naming the sequence.

    Notes
    -----
    Runs on the CPU in float64, one sequence at a time (a Numba kernel per sequence);
    inputs on another device are copied. Logits are ``log p`` (``-inf`` at probability 0).
    """

    def __init__(self, dist: LODistribution, *, max_states: int = 1 << 22) -> None:
        super().__init__()
        self.dist = dist
        self.max_states = int(max_states)
        self.vocab_size = dist.vocab_size
        self.mask_id = dist.mask_id
        self.max_seq_len = dist.length
        self.data_length = dist.length

    def probs(self, tokens: torch.Tensor) -> torch.Tensor:
        """Conditional laws at every position: float64 tensor, shape (B, L, V)."""
        from lohard.lo import exact_posterior

        if tokens.shape[1] != self.dist.length:
            raise ValueError(f"tokens must have length L = {self.dist.length}, got "
                             f"{tokens.shape[1]}")
        post = exact_posterior(self.dist, tokens.detach().cpu().numpy(),
                               max_states=self.max_states)
        return torch.from_numpy(post.probs).to(tokens.device)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits log p(x^i = v | tokens), -inf where the probability is 0: (B, L, V)."""
        with torch.no_grad(), np.errstate(divide="ignore"):
            return torch.log(self.probs(tokens)).float()


class BPOracle(nn.Module):
    r"""Belief-propagation "model" of an L&O law: BP marginals given the unmasked tokens.

    The interface of :class:`ExactOracle` (``probs``, ``forward``, ``vocab_size``,
    ``mask_id``), computed by :func:`lohard.lo.bp_posterior` on the factor graph the
    unmasked observations induce. It serves as the ordering oracle of
    ``sample(..., sampler="bp-order", order_model=BPOracle(dist))``: the positions BP is
    most confident about are unmasked first, with values from the MDM.

    Parameters
    ----------
    dist : LODistribution
        Table observations on small scopes (a CSP factor graph, e.g. NAE-SAT or a
        sparse predicate); a slab law has no such structure and is refused.
    bp_options
        Passed to :func:`lohard.lo.bp_posterior` (``damping``, ``tol``, ``max_iter``).

    Notes
    -----
    CPU, float64, one BP run per sequence and call. A sequence on which BP did not
    converge is counted in ``not_converged`` (its beliefs, the last iterate, are still
    used to rank positions).
    """

    def __init__(self, dist: LODistribution, **bp_options) -> None:
        super().__init__()
        from lohard.lo._distribution import KIND_TABLE

        if not isinstance(dist, LODistribution):
            raise TypeError(f"BPOracle needs an LODistribution (a CSP), got "
                            f"{type(dist).__name__}")
        if dist.kind != KIND_TABLE:
            raise ValueError(f"bp-order needs a distribution with a CSP structure (table "
                             f"observations on scopes of k latents); the {dist.family!r} "
                             f"law is of kind {dist.kind!r}, whose observations couple all "
                             f"latents at once")
        self.dist = dist
        self.bp_options = dict(bp_options)
        self.vocab_size = dist.vocab_size
        self.mask_id = dist.mask_id
        self.max_seq_len = dist.length
        self.data_length = dist.length
        self.calls = 0
        self.not_converged = 0

    def probs(self, tokens: torch.Tensor) -> torch.Tensor:
        """BP laws at every position: float64 tensor, shape (B, L, V)."""
        from lohard.lo import bp_posterior

        if tokens.shape[1] != self.dist.length:
            raise ValueError(f"tokens must have length L = {self.dist.length}, got "
                             f"{tokens.shape[1]}")
        post = bp_posterior(self.dist, tokens.detach().cpu().numpy(), warn=False,
                            **self.bp_options)
        self.calls += 1
        self.not_converged += int(np.count_nonzero(~np.asarray(post.converged)))
        return torch.from_numpy(post.probs).to(tokens.device)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits log p(x^i = v | tokens) from BP, -inf where BP gives 0: (B, L, V)."""
        with torch.no_grad(), np.errstate(divide="ignore"):
            return torch.log(self.probs(tokens)).float()
