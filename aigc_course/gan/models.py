"""Generators and discriminators (book Section 3.2.1), for 2-D points and 8x8 images.

* :class:`Generator` / :class:`Discriminator`: MLPs for the ring and grid mixtures.
  The discriminator can *pack* ``m`` samples into one input (PacGAN), add a
  minibatch-standard-deviation feature, use spectral normalisation, and condition on a
  label by projection.
* :class:`ImageGenerator` / :class:`ImageDiscriminator`: MLPs for the 8x8 digits,
  conditioned on the class (label embedding in G, projection in D).

Every class keeps its constructor arguments in ``.config`` (:func:`~aigc_course.pretrained.capture_config`),
so a checkpoint can rebuild it.

``forward`` runs in every training step, so it checks shapes and dtypes only; label values are
range-checked there only for CPU tensors (free of a device sync). The pipelines and
:meth:`ImageGenerator.decode` check their inputs' values once per call.
"""

from __future__ import annotations

import torch
from torch import nn

from aigc_course._checks import check_bool, check_finite, check_int, check_number
from aigc_course.pretrained import capture_config


def _sn(layer: nn.Module, use: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(layer) if use else layer


def _check_labels(labels: torch.Tensor | None, num_classes: int, batch: int) -> None:
    if num_classes == 0:
        if labels is not None:
            raise ValueError("this model is unconditional; call it without labels")
        return
    if labels is None:
        raise ValueError(f"this model is conditional; pass labels (B,) with values in [0, {num_classes})")
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"labels must be a tensor of shape ({batch},), got {type(labels).__name__}")
    if labels.ndim != 1 or len(labels) != batch:
        raise ValueError(f"labels must have shape ({batch},), got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class ids, got dtype {labels.dtype}")
    # a value check on an accelerator would wait for it in every step: CPU tensors only
    if labels.device.type == "cpu" and labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got min {int(labels.min())} max {int(labels.max())}")


def _describe(x) -> str:
    return f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__


def _check_z(z, latent_dim: int) -> torch.Tensor:
    """Shape and dtype of a latent batch (no value scan: forward runs in every training step)."""
    if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != latent_dim or not z.is_floating_point():
        raise ValueError(f"z must have shape (B, {latent_dim}) and a float dtype, got {_describe(z)}")
    return z


class Generator(nn.Module):
    """MLP ``G(z) -> x``: ``z (B, latent_dim)`` (and ``labels (B,)`` if conditional) to ``(B, out_dim)``."""

    @capture_config
    def __init__(self, latent_dim: int = 8, hidden: int = 128, depth: int = 3, out_dim: int = 2,
                 num_classes: int = 0, embed_dim: int = 16, data_scale: float = 1.0):
        super().__init__()
        for name, value in (("latent_dim", latent_dim), ("hidden", hidden), ("depth", depth), ("out_dim", out_dim)):
            check_int(value, name, low=1)
        check_int(num_classes, "num_classes", low=0)
        check_int(embed_dim, "embed_dim", low=1)
        check_number(data_scale, "data_scale", low=0.0, low_open=True)
        # the net works at unit scale; data_scale maps its output to the data's range
        self.data_scale = data_scale
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        layers, width = [], latent_dim + (embed_dim if num_classes else 0)
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        _check_z(z, self.latent_dim)
        _check_labels(labels, self.num_classes, len(z))
        h = z if self.embed is None else torch.cat([z, self.embed(labels)], dim=1)
        return self.net(h) * self.data_scale


class MinibatchStd(nn.Module):
    """Append the batch's mean feature standard deviation as one extra feature ``(B, F+1)``.

    A collapsed generator makes every fake alike; this feature lets D see that at once
    (Karras et al., 2018).
    """

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        std = h.std(dim=0, unbiased=False).mean() if len(h) > 1 else h.new_zeros(())
        return torch.cat([h, std.expand(len(h), 1)], dim=1)


class Discriminator(nn.Module):
    """MLP critic ``D(x) -> logit``: ``x (B, in_dim)`` to ``(B // pack,)``.

    ``pack = m`` concatenates ``m`` consecutive samples into one input of size
    ``m * in_dim`` (PacGAN), so D judges sets of samples and can spot missing variety.
    With ``num_classes > 0`` the label enters by projection:
    ``logit = w . h + embed(y) . h`` (Miyato & Koyama, 2018).

    ``fourier_features = F > 0`` feeds ``[x, sin(x B), cos(x B)]`` with a fixed random
    ``B (in_dim, F)`` of scale ``fourier_scale`` instead of ``x`` alone (Tancik et al., 2020):
    a plain MLP on raw coordinates learns sharp, narrow bumps only slowly, and the density
    ratio of a tight mixture is exactly such a function (see :mod:`aigc_course.gan.rejection`).
    """

    @capture_config
    def __init__(self, in_dim: int = 2, hidden: int = 128, depth: int = 3, pack: int = 1,
                 spectral_norm: bool = False, minibatch_std: bool = False, num_classes: int = 0,
                 data_scale: float = 1.0, fourier_features: int = 0, fourier_scale: float = 1.0):
        super().__init__()
        for name, value in (("in_dim", in_dim), ("hidden", hidden), ("depth", depth), ("pack", pack)):
            check_int(value, name, low=1)
        check_int(num_classes, "num_classes", low=0)
        check_int(fourier_features, "fourier_features", low=0)
        check_number(data_scale, "data_scale", low=0.0, low_open=True)
        check_number(fourier_scale, "fourier_scale", low=0.0, low_open=True)
        check_bool(spectral_norm, "spectral_norm")
        check_bool(minibatch_std, "minibatch_std")
        self.data_scale = data_scale
        if num_classes and pack != 1:
            raise ValueError("a conditional discriminator needs pack=1")
        self.in_dim, self.pack, self.num_classes = in_dim, pack, num_classes
        proj = None
        if fourier_features:
            proj = torch.randn(in_dim, fourier_features, generator=torch.Generator().manual_seed(0))
            proj = proj * fourier_scale
        # a buffer, so the checkpoint carries the projection and no seed has to match
        self.register_buffer("fourier", proj)
        layers, width = [], (in_dim + 2 * fourier_features) * pack
        for _ in range(depth):
            layers += [_sn(nn.Linear(width, hidden), spectral_norm), nn.LeakyReLU(0.2)]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.mbstd = MinibatchStd() if minibatch_std else None
        self.head = _sn(nn.Linear(width + int(minibatch_std), 1), spectral_norm)
        self.embed = _sn(nn.Embedding(num_classes, width), spectral_norm) if num_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != self.in_dim or not x.is_floating_point():
            raise ValueError(f"x must have shape (B, {self.in_dim}) and a float dtype, got {_describe(x)}")
        if len(x) % self.pack:
            raise ValueError(f"batch size {len(x)} must be a multiple of pack={self.pack}")
        _check_labels(labels, self.num_classes, len(x))
        x = x / self.data_scale
        if self.fourier is not None:
            angles = x @ self.fourier
            x = torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=1)
        h = self.body(x.reshape(len(x) // self.pack, self.pack * x.shape[1]))
        if self.embed is not None:
            proj = (self.embed(labels) * h).sum(dim=1)
        if self.mbstd is not None:
            h = self.mbstd(h)
        out = self.head(h).squeeze(1)
        return out + proj if self.embed is not None else out


class ImageGenerator(nn.Module):
    """Conditional generator: ``z (B, latent_dim)``, ``labels (B,)`` to ``(B, 1, 8, 8)`` in [0, 1].

    The label's embedding is concatenated to ``z`` (Mirza & Osindero, 2014). An 8x8 image is
    only 64 numbers, so an MLP with a sigmoid output is enough, and on a CPU it trains many
    times faster than a transposed-convolution stack.
    """

    @capture_config
    def __init__(self, latent_dim: int = 32, num_classes: int = 10, hidden: int = 256,
                 depth: int = 2, embed_dim: int = 16):
        super().__init__()
        for name, value in (("latent_dim", latent_dim), ("num_classes", num_classes), ("hidden", hidden),
                            ("depth", depth), ("embed_dim", embed_dim)):
            check_int(value, name, low=1)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.embed = nn.Embedding(num_classes, embed_dim)
        layers, width = [], latent_dim + embed_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers += [nn.Linear(width, 64), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        _check_z(z, self.latent_dim)
        _check_labels(labels, self.num_classes, len(z))
        return self._decode(z, self.embed(labels))

    def decode(self, z: torch.Tensor, label_embedding: torch.Tensor) -> torch.Tensor:
        """Images from ``z (B, latent_dim)`` and label embeddings ``(B, embed_dim)``.

        Lets a notebook blend two classes' embeddings, e.g. morph a 3 into an 8. Both must be
        finite: a NaN code raises ``ValueError`` instead of giving a NaN image.
        """
        check_finite(_check_z(z, self.latent_dim), "z")
        if not isinstance(label_embedding, torch.Tensor) or label_embedding.shape != (len(z), self.embed.embedding_dim):
            raise ValueError(f"label_embedding must have shape ({len(z)}, {self.embed.embedding_dim}), "
                             f"got {_describe(label_embedding)}")
        check_finite(label_embedding, "label_embedding")
        return self._decode(z, label_embedding)

    def _decode(self, z: torch.Tensor, label_embedding: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, label_embedding], dim=1)).view(len(z), 1, 8, 8)


class ImageDiscriminator(nn.Module):
    """Conditional critic: ``x (B, 1, 8, 8)``, ``labels (B,)`` to logits ``(B,)``.

    The label enters by projection, ``logit = w . h(x) + embed(y) . h(x)`` (Miyato & Koyama,
    2018), with spectral normalisation on every layer by default.
    """

    @capture_config
    def __init__(self, num_classes: int = 10, hidden: int = 256, depth: int = 2,
                 spectral_norm: bool = True):
        super().__init__()
        for name, value in (("num_classes", num_classes), ("hidden", hidden), ("depth", depth)):
            check_int(value, name, low=1)
        check_bool(spectral_norm, "spectral_norm")
        self.num_classes = num_classes
        layers, width = [nn.Flatten()], 64
        for _ in range(depth):
            layers += [_sn(nn.Linear(width, hidden), spectral_norm), nn.LeakyReLU(0.2)]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.head = _sn(nn.Linear(width, 1), spectral_norm)
        self.embed = _sn(nn.Embedding(num_classes, width), spectral_norm)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != (1, 8, 8) or not x.is_floating_point():
            raise ValueError(f"x must have shape (B, 1, 8, 8) and a float dtype, got {_describe(x)}")
        _check_labels(labels, self.num_classes, len(x))
        h = self.body(x)
        return self.head(h).squeeze(1) + (self.embed(labels) * h).sum(dim=1)
