"""The variational autoencoder (Chapter 3.4; the mathematics is Chapter 4.3).

An encoder maps x to a Gaussian posterior q(z|x) = N(mu, diag(exp(logvar))); the
*reparameterisation trick* z = mu + sigma * eps (eq. 4.3.4) lets gradients flow through the
sample; a decoder gives the likelihood p(x|z); the prior is p(z) = N(0, I). Training
maximises the evidence lower bound (ELBO, eq. 4.3.2)

    ELBO(x) = E_q[log p(x|z)] - beta * KL(q(z|x) || p(z)),   beta = 1 gives a true bound,

and the importance-weighted bound of Burda et al. (2016, eq. 4.3.6),

    L_K(x) = E[log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x)],  z_k ~ q(z|x),

tightens towards log p(x) as K grows (L_1 = ELBO).

Likelihoods (all log-probabilities are in nats, summed over dimensions):

* ``"gaussian"`` (2-D data): a diagonal Gaussian density with a learned per-example variance.
* ``"binomial"`` (8x8 digits, the default): sklearn's digit pixels are integers k = 0..16
  (the package stores k/16), so each pixel is ``Binomial(16, p)``: a real *discrete*
  distribution over the 17 levels, and log p(x) is directly comparable with any other discrete
  model over the same 17 levels (e.g. an autoregressive pixel model).
* ``"categorical"`` (8x8 digits): a free 17-way categorical per pixel; also discrete.

Public methods check their inputs once per call: data ``x`` must be finite and (for digits) on
the 17-level grid, a latent ``z`` must be finite -- a NaN code would decode to a NaN image.
The training loss (:func:`vae_loss_fn`) checks its data once, when training starts, not in
every step.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from aigc_course._checks import (
    broadcast_shape,
    check_bool,
    check_finite,
    check_int,
    check_number,
    check_tensor,
)
from aigc_course.pretrained import capture_config
from aigc_course.runtime import make_generator

LEVELS = 16  # digit pixels are k / 16 with k in 0..16
LIKELIHOODS = {"2d": ("gaussian",), "digits": ("binomial", "categorical")}
_MIN_LOGVAR = -9.0  # the decoder's Gaussian std never drops below exp(-4.5) ~ 0.011


# ---------------------------------------------------------------------- Gaussian helpers


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                   generator: torch.Generator | None = None,
                   eps: torch.Tensor | None = None) -> torch.Tensor:
    """z = mu + exp(logvar / 2) * eps with eps ~ N(0, I) (eq. 4.3.4); any shape ``(..., D)``.

    The randomness is in eps only, so z is a differentiable function of (mu, logvar).
    Pass ``eps`` (same shape as ``mu``) to use given noise instead of drawing it.
    """
    check_tensor(mu, "mu", floating=True)
    check_tensor(logvar, "logvar", floating=True)
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} "
                         f"and {tuple(logvar.shape)}")
    if eps is None:
        # draw where the generator lives: a CPU generator then gives the same eps on any device
        draw_on = generator.device if generator is not None else mu.device
        eps = torch.randn(mu.shape, generator=generator, device=draw_on, dtype=mu.dtype).to(mu.device)
    elif not isinstance(eps, torch.Tensor) or eps.shape != mu.shape:
        got = tuple(eps.shape) if isinstance(eps, torch.Tensor) else type(eps).__name__
        raise ValueError(f"eps must be a tensor of the shape of mu {tuple(mu.shape)}, got {got}")
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, mu_p: torch.Tensor | None = None,
                logvar_p: torch.Tensor | None = None) -> torch.Tensor:
    """Closed-form KL(N(mu, e^logvar) || N(mu_p, e^logvar_p)) for diagonal Gaussians (eq. 4.3.3).

    ``mu, logvar``: ``(..., D)``; the prior defaults to N(0, I). Returns ``(...)``, in nats:
    1/2 sum_d [logvar_p - logvar + (e^logvar + (mu - mu_p)^2) / e^logvar_p - 1].
    """
    check_tensor(mu, "mu", floating=True)
    check_tensor(logvar, "logvar", floating=True)
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} "
                         f"and {tuple(logvar.shape)}")
    mu_p = torch.zeros_like(mu) if mu_p is None else mu_p
    logvar_p = torch.zeros_like(logvar) if logvar_p is None else logvar_p
    for name, t in (("mu_p", mu_p), ("logvar_p", logvar_p)):
        if not isinstance(t, torch.Tensor) or broadcast_shape(t.shape, mu.shape) != tuple(mu.shape):
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a tensor broadcastable to mu's shape {tuple(mu.shape)}, got {got}")
    terms = logvar_p - logvar + (logvar.exp() + (mu - mu_p) ** 2) / logvar_p.exp() - 1.0
    return 0.5 * terms.sum(-1)


def gaussian_log_prob(x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(x; mu, diag(e^logvar)) summed over the last dimension: ``(..., D) -> (...)``."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (x - mu) ** 2 / logvar.exp()).sum(-1)


def iw_bound(log_weights: torch.Tensor) -> torch.Tensor:
    """The importance-weighted bound from log weights ``(K, B)`` -> ``(B,)`` (eq. 4.3.6):
    log (1/K) sum_k w_k = logsumexp_k log w_k - log K, computed without overflow."""
    check_tensor(log_weights, "log_weights", floating=True)
    if log_weights.dim() < 1 or log_weights.shape[0] < 1:
        raise ValueError(f"log_weights must have shape (K, ...) with K >= 1, got {tuple(log_weights.shape)}")
    return torch.logsumexp(log_weights, dim=0) - math.log(log_weights.shape[0])


def binomial_log_prob(k: torch.Tensor, logits: torch.Tensor, n: int = LEVELS) -> torch.Tensor:
    """log Binomial(k; n, sigmoid(logits)) elementwise (no sum); k integer-valued floats."""
    n = check_int(n, "n", low=1)
    log_choose = math.lgamma(n + 1) - torch.lgamma(k + 1) - torch.lgamma(n - k + 1)
    return log_choose + k * F.logsigmoid(logits) + (n - k) * F.logsigmoid(-logits)


def _mlp(inp: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inp, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                         nn.Linear(hidden, out))


# ---------------------------------------------------------------------- the model


class VAE(nn.Module):
    """An MLP VAE for 2-D points ``(B, 2)`` or 8x8 digits ``(B, 1, 8, 8)`` in [0, 1].

    ``data``: ``"2d"`` or ``"digits"``; ``likelihood``: see the module docstring (default
    ``"gaussian"`` for 2-D, ``"binomial"`` for digits). Build one with :func:`make_vae`.
    """

    @capture_config
    def __init__(self, data: str = "digits", latent_dim: int = 16, hidden: int = 256,
                 likelihood: str | None = None):
        super().__init__()
        if data not in LIKELIHOODS:
            raise ValueError(f"data must be one of {sorted(LIKELIHOODS)}, got {data!r}")
        likelihood = LIKELIHOODS[data][0] if likelihood is None else likelihood
        if likelihood not in LIKELIHOODS[data]:
            raise ValueError(f"likelihood for data={data!r} must be one of {LIKELIHOODS[data]}, "
                             f"got {likelihood!r}")
        latent_dim, hidden = check_int(latent_dim, "latent_dim", low=1), check_int(hidden, "hidden", low=1)
        self.data, self.likelihood = data, likelihood
        self.latent_dim, self.hidden = latent_dim, hidden
        self.x_dim = 2 if data == "2d" else 64
        out = {"gaussian": 2 * self.x_dim, "binomial": self.x_dim,
               "categorical": self.x_dim * (LEVELS + 1)}[likelihood]
        self.encoder = _mlp(self.x_dim, hidden, 2 * latent_dim)
        self.decoder = _mlp(latent_dim, hidden, out)

    @property
    def data_shape(self) -> tuple[int, ...]:
        return (2,) if self.data == "2d" else (1, 8, 8)

    # -- input checks: a clear ValueError naming the argument, once per public call
    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        """Shape, finiteness and (digits) the 17-level grid; returns ``x`` flattened ``(B, x_dim)``."""
        if not isinstance(x, torch.Tensor) or x.dim() != 1 + len(self.data_shape) \
                or tuple(x.shape[1:]) != self.data_shape:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must have shape (B, {', '.join(map(str, self.data_shape))}) "
                             f"for data={self.data!r}, got {got}")
        if not x.is_floating_point():
            raise ValueError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        check_finite(x, "x")
        if self.data == "digits":
            if x.min() < 0 or x.max() > 1:
                raise ValueError(f"x must hold pixel values in [0, 1] (k/16), got range "
                                 f"[{float(x.min()):.3g}, {float(x.max()):.3g}]")
            k = x * LEVELS
            if (k - k.round()).abs().max() > 1e-3:
                raise ValueError("x must hold pixel values on the 17-level grid k/16 (k = 0..16) "
                                 "for the discrete likelihood; round with (x * 16).round() / 16")
        return x.to(next(self.parameters()).device, torch.float32).flatten(1)

    def _check_z(self, z: torch.Tensor) -> torch.Tensor:
        """A latent from outside: shape, dtype and finite values (NaN codes decode to NaN images)."""
        if not isinstance(z, torch.Tensor) or z.dim() < 2 or z.shape[-1] != self.latent_dim:
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"z must have shape (B, {self.latent_dim}), got {got}")
        if not z.is_floating_point():
            raise ValueError(f"z must be a floating-point tensor, got dtype {z.dtype}")
        return check_finite(z, "z")

    # -- the two halves
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x): ``x (B, *data_shape)`` -> ``(mu, logvar)``, each ``(B, latent_dim)``."""
        return self._encode_flat(self._check_x(x))

    def _encode_flat(self, flat_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(flat_x * 2 - 1 if self.data == "digits" else flat_x)
        mu, logvar = h.chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)

    def _decoder_params(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean of p(x|z): ``z (..., B, latent_dim)`` -> ``(..., B, *data_shape)``.

        For digits the mean is in [0, 1] (E[k] / 16), on the same scale as the data.
        ``z`` must be finite: a NaN or inf code raises ``ValueError`` instead of a NaN image.
        """
        return self._decode_mean(self._check_z(z))

    def _decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        out = self._decoder_params(z)
        lead = out.shape[:-1]
        if self.likelihood == "gaussian":
            mean = out[..., : self.x_dim]
        elif self.likelihood == "binomial":
            mean = torch.sigmoid(out)
        else:
            probs = out.unflatten(-1, (self.x_dim, LEVELS + 1)).softmax(-1)
            mean = (probs * torch.arange(LEVELS + 1, device=z.device)).sum(-1) / LEVELS
        return mean.reshape(*lead, *self.data_shape)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) in nats: ``x (B, *data_shape)``, ``z (..., B, latent_dim)`` -> ``(..., B)``."""
        return self._log_px(self._check_x(x), self._check_z(z))

    def _log_px(self, flat_x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        out = self._decoder_params(z)
        if self.likelihood == "gaussian":
            mean, raw = out.chunk(2, dim=-1)
            logvar = _MIN_LOGVAR + F.softplus(raw - _MIN_LOGVAR)
            return gaussian_log_prob(flat_x, mean, logvar)
        k = (flat_x * LEVELS).round()
        if self.likelihood == "binomial":
            return binomial_log_prob(k, out).sum(-1)
        logp = out.unflatten(-1, (self.x_dim, LEVELS + 1)).log_softmax(-1)
        idx = k.long().expand(*logp.shape[:-1]).unsqueeze(-1)
        return logp.gather(-1, idx).squeeze(-1).sum(-1)

    # -- the objectives
    def elbo_terms(self, x: torch.Tensor, generator: torch.Generator | None = None,
                   num_samples: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction E_q[log p(x|z)] estimated with ``num_samples`` z, KL(q||p) exact): ``(B,)`` each."""
        _check_positive("num_samples", num_samples)
        return self._elbo_terms(self._check_x(x), generator, num_samples)

    def _elbo_terms(self, flat: torch.Tensor, generator, num_samples: int):
        mu, logvar = self._encode_flat(flat)
        std_shape = (num_samples, *mu.shape)
        z = reparameterize(mu.expand(std_shape), logvar.expand(std_shape), generator)
        return self._log_px(flat, z).mean(0), gaussian_kl(mu, logvar)

    def elbo(self, x: torch.Tensor, beta: float = 1.0, generator: torch.Generator | None = None,
             num_samples: int = 1) -> torch.Tensor:
        """Per-example ELBO in nats, ``(B,)`` (eq. 4.3.2): reconstruction - beta * KL.

        Only ``beta = 1`` is a lower bound on log p(x); beta > 1 is the beta-VAE objective.
        """
        beta = check_number(beta, "beta", low=0.0)
        _check_positive("num_samples", num_samples)
        return self._elbo(self._check_x(x), beta, generator, num_samples)

    def _elbo(self, flat: torch.Tensor, beta: float, generator, num_samples: int = 1) -> torch.Tensor:
        recon, kl = self._elbo_terms(flat, generator, num_samples)
        return recon - beta * kl

    def log_importance_weights(self, x: torch.Tensor, num_samples: int,
                               generator: torch.Generator | None = None) -> torch.Tensor:
        """log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x), z_k ~ q(z|x): ``(K, B)``."""
        _check_positive("num_samples", num_samples)
        return self._log_weights(self._check_x(x), num_samples, generator)

    def _log_weights(self, flat: torch.Tensor, num_samples: int, generator) -> torch.Tensor:
        mu, logvar = self._encode_flat(flat)
        shape = (num_samples, *mu.shape)
        z = reparameterize(mu.expand(shape), logvar.expand(shape), generator)
        log_q = gaussian_log_prob(z, mu, logvar)
        log_prior = gaussian_log_prob(z, torch.zeros_like(z), torch.zeros_like(z))
        return self._log_px(flat, z) + log_prior - log_q

    def importance_weighted_log_likelihood(self, x: torch.Tensor, num_samples: int,
                                           generator: torch.Generator | None = None,
                                           chunk_size: int = 256) -> torch.Tensor:
        """The IWAE bound L_K (eq. 4.3.6), ``(B,)`` nats: logsumexp_k log w_k - log K.

        ``L_1`` is an unbiased one-sample ELBO estimate; L_K <= log p(x) and increases with K.
        The K samples are drawn ``chunk_size`` at a time so K = 1000 fits in memory.
        """
        _check_positive("num_samples", num_samples)
        _check_positive("chunk_size", chunk_size)
        flat = self._check_x(x)  # once, not once per chunk
        chunks, left = [], num_samples
        while left > 0:
            k = min(chunk_size, left)
            chunks.append(self._log_weights(flat, k, generator))
            left -= k
        return iw_bound(torch.cat(chunks))

    # -- generation
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, *, seed: int | None = None,
               mean: bool = True) -> torch.Tensor:
        """n draws ``(n, *data_shape)``: z ~ N(0, I), then the decoder mean (``mean=True``,
        in [0, 1] for digits) or a draw from p(x|z) (``mean=False``; digits come out on the
        17-level grid). An int ``seed`` repeats the draws exactly on any device; ``None`` draws
        from torch's global RNG (:func:`~aigc_course.runtime.make_generator`).

        ``generator`` is deprecated (pass ``seed``); it is still honoured, with a warning.
        """
        _check_positive("n", n)
        check_bool(mean, "mean")
        if generator is None:
            generator = make_generator(seed)
        else:
            warnings.warn("VAE.sample(generator=...) is deprecated; pass seed= instead",
                          DeprecationWarning, stacklevel=2)
            if seed is not None:
                raise ValueError("pass seed or generator to VAE.sample, not both")
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator).to(device) \
            if generator is None or generator.device.type == "cpu" \
            else torch.randn(n, self.latent_dim, generator=generator, device=device)
        if mean:
            return self._decode_mean(z)
        out = self._decoder_params(z).cpu()
        if generator is not None and generator.device.type != "cpu":
            generator = None  # the pixel draws below run on the CPU
        if self.likelihood == "gaussian":
            mu, raw = out.chunk(2, dim=-1)
            std = (0.5 * (_MIN_LOGVAR + F.softplus(raw - _MIN_LOGVAR))).exp()
            x = mu + std * torch.randn(mu.shape, generator=generator)
        elif self.likelihood == "binomial":
            x = torch.binomial(torch.full_like(out, LEVELS), torch.sigmoid(out), generator=generator)
        else:
            probs = out.unflatten(-1, (self.x_dim, LEVELS + 1)).softmax(-1).reshape(-1, LEVELS + 1)
            x = torch.multinomial(probs, 1, generator=generator).float().reshape(n, self.x_dim)
        x = x if self.likelihood == "gaussian" else x / LEVELS
        return x.reshape(n, *self.data_shape).to(device)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """decode(mu(x)): the decoder mean at the posterior mean, same shape as ``x``."""
        return self._decode_mean(self.encode(x)[0])


def _check_positive(name: str, value) -> None:
    check_int(value, name, low=1)


def make_vae(data: str = "digits", latent_dim: int | None = None, hidden: int | None = None,
             likelihood: str | None = None) -> VAE:
    """A VAE with the course's defaults: ``"2d"`` (latent 2, hidden 128, Gaussian decoder) or
    ``"digits"`` (latent 16, hidden 256, Binomial(16, p) pixels)."""
    defaults = {"2d": (2, 128), "digits": (16, 256)}
    if data not in defaults:
        raise ValueError(f"data must be one of {sorted(defaults)}, got {data!r}")
    d_latent, d_hidden = defaults[data]
    return VAE(data, latent_dim or d_latent, hidden or d_hidden, likelihood or LIKELIHOODS[data][0])


# ---------------------------------------------------------------------- training and evaluation


def vae_loss_fn(x_train: torch.Tensor, batch_size: int = 128, beta: float = 1.0,
                generator: torch.Generator | None = None):
    """A ``loss_fn(model, step)`` for :func:`aigc_course.training.fit`: the mean negative
    ELBO per example (nats) on a random minibatch of ``x_train``.

    ``x_train`` is checked once, on the first step (shape, finite, the 17-level grid for
    digits); the steps themselves run no value checks, so training never waits on them.
    """
    check_tensor(x_train, "x_train", floating=True)
    if len(x_train) == 0:
        raise ValueError(f"x_train must hold at least one example, got shape {tuple(x_train.shape)}")
    batch_size = check_int(batch_size, "batch_size", low=1)
    beta = check_number(beta, "beta", low=0.0)
    checked_for: list[VAE] = []

    def loss_fn(model: VAE, step: int) -> torch.Tensor:
        if not any(m is model for m in checked_for):
            try:
                model._check_x(x_train)
            except ValueError as err:
                raise ValueError(f"x_train: {err}") from None
            checked_for.append(model)
        idx = torch.randint(len(x_train), (batch_size,), generator=generator)
        device = next(model.parameters()).device
        flat = x_train[idx].to(device, torch.float32).flatten(1)
        return -model._elbo(flat, beta, _dev_gen(generator, device)).mean()
    return loss_fn


def _dev_gen(generator, device):
    """Generators must live on the device the noise is drawn on; CPU runs keep full repeatability."""
    return generator if generator is None or torch.device(device).type == "cpu" else None


@torch.no_grad()
def evaluate_bounds(model: VAE, x: torch.Tensor, ks=(1, 10, 100, 1000), seed: int = 0,
                    batch_size: int = 120) -> dict[str, float]:
    """Mean ELBO (analytic KL, one z) and IW bounds L_K over ``x``, in nats per example.

    Returns ``{"elbo": ..., "iw_1": ..., "iw_10": ..., ...}``.
    """
    if isinstance(ks, (str, bytes)) or not hasattr(ks, "__iter__"):
        raise ValueError(f"ks must be a sequence of positive ints, got {ks!r}")
    ks = [check_int(k, "ks[...]", low=1) for k in ks]
    seed = check_int(seed, "seed", low=0)
    batch_size = check_int(batch_size, "batch_size", low=1)
    if len(x) == 0:
        raise ValueError(f"x must hold at least one example, got shape {tuple(x.shape)}")
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device=device if device.type == "cuda" else "cpu").manual_seed(seed)
    totals = {"elbo": 0.0, **{f"iw_{k}": 0.0 for k in ks}}
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size].to(device)
        totals["elbo"] += float(model.elbo(xb, generator=gen).sum())
        for k in ks:
            totals[f"iw_{k}"] += float(model.importance_weighted_log_likelihood(xb, k, gen).sum())
    return {key: value / len(x) for key, value in totals.items()}


def bits_per_dim(nats: float, dims: int = 64) -> float:
    """Convert a log-likelihood in nats per example into bits per dimension (a cost: -nats)."""
    nats = check_number(nats, "nats")
    dims = check_int(dims, "dims", low=1)
    return -nats / (dims * math.log(2))
