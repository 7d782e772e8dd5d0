"""Generative versus discriminative: two classifiers of the same data, only one of which can generate.

Book 2.1. A *discriminative* model learns ``p(y | x)`` directly: here multinomial logistic
regression, ``p(y | x) = softmax(W x + b)_y``. A *generative* model learns how the data
itself is distributed, ``p(x, y) = p(x | y) p(y)``: here one Gaussian per class,

.. math::

    \\log p(x \\mid y) = -\\tfrac12 (x - \\mu_y)^\\top \\Sigma_y^{-1} (x - \\mu_y)
                        - \\tfrac12 \\log\\det(2\\pi\\Sigma_y)   \\qquad\\text{(eq. 2.1.1)}

It classifies through Bayes' rule, ``p(y | x) = p(x | y) p(y) / sum_k p(x | k) p(k)``
(eq. 2.1.2), and, unlike logistic regression, it can *sample* new ``x`` for a chosen ``y``.
With one covariance shared by all classes its decision boundaries are linear, the same family
as logistic regression's (Ng & Jordan 2002 compare exactly such pairs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from aigc_course.pretrained import capture_config

COVARIANCES = ("shared", "diagonal", "full")


def _flat(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """``(N, ...)`` -> ``(N, D)`` float64."""
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[0] == 0:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a (N, D) or (N, C, H, W) tensor with N >= 1, got {got}")
    return x.reshape(len(x), -1).double()


def _labels(y: torch.Tensor, n: int, num_classes: int | None = None) -> torch.Tensor:
    if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"y must be a 1-D tensor of integer class labels, got {getattr(y, 'dtype', type(y))}")
    if len(y) != n:
        raise ValueError(f"y must hold one label per row of x: {n} rows, got {len(y)} labels")
    if (y < 0).any() or (num_classes is not None and (y >= num_classes).any()):
        raise ValueError(f"y must hold labels in [0, {num_classes}), got values from {int(y.min())} to {int(y.max())}")
    return y.long()


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """``log N(x; mean, cov)`` (eq. 2.1.1) for each row: ``x (N, D)``, ``mean (D,)``, ``cov (D, D)`` -> ``(N,)``.

    Uses a Cholesky factor ``cov = L L^T``: the quadratic form is ``|L^{-1}(x - mean)|^2`` and
    ``log det cov = 2 sum log diag L``, which is stabler than inverting ``cov``.
    """
    if x.dim() != 2 or mean.shape != (x.shape[1],) or cov.shape != (x.shape[1], x.shape[1]):
        raise ValueError(f"expected x (N, D), mean (D,), cov (D, D); got {tuple(x.shape)}, "
                         f"{tuple(mean.shape)}, {tuple(cov.shape)}")
    chol, info = torch.linalg.cholesky_ex(cov)
    if int(info) != 0:
        raise ValueError("cov must be symmetric positive definite; add a small multiple of the identity")
    z = torch.linalg.solve_triangular(chol, (x - mean).T, upper=False)  # (D, N)
    d = x.shape[1]
    return -0.5 * (z**2).sum(0) - torch.log(torch.diagonal(chol)).sum() - 0.5 * d * math.log(2 * math.pi)


class GaussianClassifier:
    """Class-conditional Gaussians ``p(x | y) = N(mu_y, Sigma_y)`` with class priors ``p(y)``.

    ``covariance``: ``"shared"`` (one pooled ``Sigma`` for all classes: linear boundaries,
    i.e. linear discriminant analysis), ``"diagonal"`` (per class, independent pixels) or
    ``"full"`` (per class). ``reg`` is added to every variance so that pixels that never
    vary (the digits' blank corners) do not make ``Sigma`` singular.
    """

    @capture_config
    def __init__(self, covariance: str = "shared", reg: float = 0.01):
        if covariance not in COVARIANCES:
            raise ValueError(f"covariance must be one of {COVARIANCES}, got {covariance!r}")
        if not isinstance(reg, (int, float)) or reg <= 0:
            raise ValueError(f"reg must be a positive number, got {reg!r}")
        self.covariance, self.reg = covariance, float(reg)

    def fit(self, x: torch.Tensor, y: torch.Tensor, num_classes: int | None = None) -> GaussianClassifier:
        """Maximum likelihood: class frequencies, class means and (pooled) covariances."""
        x = _flat(x)
        y = _labels(y, len(x))
        k = int(y.max()) + 1 if num_classes is None else num_classes
        counts = torch.bincount(y, minlength=k).double()
        if (counts < 2).any():
            raise ValueError(f"every class needs at least 2 examples to estimate a covariance, got counts {counts.long().tolist()}")
        self.num_classes, self.dim = k, x.shape[1]
        self.log_prior = (counts / counts.sum()).log()
        self.means = torch.stack([x[y == c].mean(0) for c in range(k)])  # (K, D)
        eye = torch.eye(self.dim, dtype=torch.float64)
        centred = x - self.means[y]
        if self.covariance == "shared":
            pooled = centred.T @ centred / len(x)
            self.covs = (pooled + self.reg * eye).expand(k, -1, -1).clone()
        else:
            covs = []
            for c in range(k):
                r = centred[y == c]
                cov = r.T @ r / len(r)
                if self.covariance == "diagonal":
                    cov = torch.diag(torch.diagonal(cov))
                covs.append(cov + self.reg * eye)
            self.covs = torch.stack(covs)
        self._chol = torch.linalg.cholesky(self.covs)
        return self

    def _check_fitted(self):
        if not hasattr(self, "means"):
            raise ValueError("this GaussianClassifier is not fitted yet; call fit(x, y) first")

    def log_joint(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x | y) + log p(y)`` for every class: ``(N, D)`` -> ``(N, K)``."""
        self._check_fitted()
        x = _flat(x)
        if x.shape[1] != self.dim:
            raise ValueError(f"x must have D={self.dim} features like the training data, got {x.shape[1]}")
        cols = [gaussian_log_density(x, self.means[c], self.covs[c]) for c in range(self.num_classes)]
        return torch.stack(cols, dim=1) + self.log_prior

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Bayes' rule (eq. 2.1.2): ``p(y | x)``, ``(N, K)``."""
        return self.log_joint(x).softmax(dim=1)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_joint(x).argmax(dim=1)

    def log_likelihood(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Mean ``log p(x, y)`` in nats per example (how well the model explains the data)."""
        lj = self.log_joint(x)
        y = _labels(y, len(lj), self.num_classes)
        return float(lj.gather(1, y[:, None]).mean())

    def sample(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """New data for the given classes: ``x = mu_y + L_y z``, ``z ~ N(0, I)``. ``(M,)`` -> ``(M, D)``."""
        self._check_fitted()
        labels = _labels(labels, len(labels), self.num_classes)
        z = torch.randn(len(labels), self.dim, 1, generator=generator, dtype=torch.float64)
        return self.means[labels] + (self._chol[labels] @ z).squeeze(-1)


class LogisticRegression(nn.Module):
    """Multinomial logistic regression ``p(y | x) = softmax(W x + b)``: ``(N, D)`` -> logits ``(N, K)``."""

    @capture_config
    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.linear = nn.Linear(dim, num_classes, dtype=torch.float64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(_flat(x))

    def fit(self, x: torch.Tensor, y: torch.Tensor, weight_decay: float = 1e-3, max_iter: int = 200) -> LogisticRegression:
        """Minimise mean cross-entropy + ``weight_decay/2 * |W|^2`` with L-BFGS (a convex problem)."""
        x = _flat(x)
        y = _labels(y, len(x), self.linear.out_features)
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        opt = torch.optim.LBFGS(self.parameters(), max_iter=max_iter, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(self.linear(x), y) + 0.5 * weight_decay * (self.linear.weight**2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return self

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return self(x).softmax(dim=1)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self(x).argmax(dim=1)


def accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    if predicted.shape != labels.shape:
        raise ValueError(f"predicted and labels must have the same shape, got {tuple(predicted.shape)} and {tuple(labels.shape)}")
    return float((predicted.cpu() == labels.cpu()).double().mean())


def learning_curve(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
                   sizes: Sequence[int], repeats: int = 5, seed: int = 0, covariance: str = "shared",
                   reg: float = 0.01, weight_decay: float = 1e-3) -> dict[str, torch.Tensor]:
    """Test accuracy of both classifiers trained on random stratified subsets of each size.

    Ng & Jordan (2002): the generative classifier reaches its (higher) error faster; the
    discriminative one has the lower error when data is plentiful. Returns
    ``{"sizes": (S,), "generative": (S, repeats), "discriminative": (S, repeats)}``.
    """
    y_train = _labels(y_train, len(x_train))
    k = int(y_train.max()) + 1
    per_class = [torch.nonzero(y_train == c).squeeze(1) for c in range(k)]
    gen = torch.Generator().manual_seed(seed)
    out = {"generative": torch.zeros(len(sizes), repeats), "discriminative": torch.zeros(len(sizes), repeats)}
    for i, n in enumerate(sizes):
        if n < 2 * k or n > len(x_train):
            raise ValueError(f"sizes must lie in [{2 * k}, {len(x_train)}] (2 examples per class at least), got {n}")
        for r in range(repeats):
            idx = torch.cat([p[torch.randperm(len(p), generator=gen)[: max(2, round(n * len(p) / len(x_train)))]]
                             for p in per_class])
            g = GaussianClassifier(covariance, reg).fit(x_train[idx], y_train[idx], k)
            torch.manual_seed(seed + r)
            d = LogisticRegression(_flat(x_train).shape[1], k).fit(x_train[idx], y_train[idx], weight_decay)
            out["generative"][i, r] = accuracy(g.predict(x_test), y_test)
            out["discriminative"][i, r] = accuracy(d.predict(x_test), y_test)
    out["sizes"] = torch.tensor(list(sizes))
    return out
