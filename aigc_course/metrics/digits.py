"""Scoring 8x8 digit samples with a classifier trained on real digits.

The classifier (checkpoint ``digits-classifier``, trained by
``scripts/train_digit_classifier.py`` on the train split of :func:`aigc_course.data.load_digits`)
gives three scores used by the GAN, VAE and diffusion chapters:

* **accuracy** -- the fraction of conditional samples classified as the label they were
  asked for;
* **FDD**, the Fréchet digit distance -- FID's formula,
  :math:`\\lVert\\mu_a-\\mu_b\\rVert^2 + \\operatorname{Tr}(\\Sigma_a+\\Sigma_b-2(\\Sigma_a\\Sigma_b)^{1/2})`,
  in the classifier's 128-d penultimate feature space instead of Inception's;
* **memorisation** -- each sample's pixel distance to its nearest training image, to compare
  with the same distance for real test images (a model that copies has smaller distances).

The scores check their inputs once per call -- shape, finite values, pixels in ``[0, 1]`` --
so a NaN or wrongly scaled batch raises instead of returning a meaningless number.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import nn

from aigc_course._checks import check_finite, check_tensor
from aigc_course.pretrained import capture_config
from aigc_course.runtime import resolve_device

FEATURE_DIM = 128


class DigitClassifier(nn.Module):
    """A small CNN for ``(N, 1, 8, 8)`` digits in ``[0, 1]``; ``features`` gives ``(N, 128)``."""

    @capture_config
    def __init__(self, width: int = 32, dropout: float = 0.25):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(2 * width * 16, FEATURE_DIM), nn.ReLU(),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(FEATURE_DIM, 10)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, 1, 8, 8)`` -> ``(N, 128)`` penultimate activations (shape checked; values are not,
        as this runs in every training step)."""
        _check_images(images, values=False)
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, 1, 8, 8)`` -> logits ``(N, 10)``."""
        return self.head(self.dropout(self.features(images)))


def _check_images(images: torch.Tensor, name: str = "images", values: bool = True) -> None:
    """Shape ``(N, 1, 8, 8)`` and float dtype; with ``values`` also N >= 1, finite, in [0, 1] (one sync)."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or tuple(images.shape[1:]) != (1, 8, 8):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{name} must be a tensor of shape (N, 1, 8, 8) in [0, 1], got {shape}")
    if not images.is_floating_point():
        raise ValueError(f"{name} must be a float tensor in [0, 1] (ink / 16), got dtype {images.dtype}")
    if not values:
        return
    if len(images) == 0:
        raise ValueError(f"{name} must hold at least one image, got shape {tuple(images.shape)}")
    check_finite(images, name)
    low, high = float(images.detach().min()), float(images.detach().max())
    if low < 0 or high > 1:
        raise ValueError(f"{name} must hold pixels in [0, 1] (ink / 16, as in load_digits), got values "
                         f"from {low:.3g} to {high:.3g}")


@lru_cache(maxsize=4)
def _cached_classifier(device_str: str) -> DigitClassifier:
    from aigc_course import pretrained

    return pretrained.load("digits-classifier", device=device_str)


def load_digit_classifier(device: torch.device | str | None = None) -> DigitClassifier:
    """The shipped ``digits-classifier`` in eval mode (loaded once per device)."""
    return _cached_classifier(str(resolve_device(device)))


@torch.no_grad()
def _batched(fn, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    classifier = load_digit_classifier()
    device = next(classifier.parameters()).device
    outs = [fn(classifier, images[i : i + batch_size].to(device).float()).cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(outs)


def classifier_accuracy(images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``images (N, 1, 8, 8)`` the classifier assigns to ``labels (N,)``."""
    _check_images(images)
    labels = torch.as_tensor(labels).reshape(-1)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class ids, got dtype {labels.dtype}")
    if len(labels) != len(images):
        raise ValueError(f"labels must have one entry per image ({len(images)}), got {len(labels)}")
    predictions = _batched(lambda m, x: m(x).argmax(dim=1), images)
    return float((predictions == labels.cpu()).float().mean())


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``(N, D)`` and ``(M, D)``.

    Uses :math:`\\operatorname{Tr}((\\Sigma_a\\Sigma_b)^{1/2}) = \\sum_i \\sqrt{\\lambda_i}` with
    :math:`\\lambda_i` the eigenvalues of the symmetric :math:`\\Sigma_a^{1/2}\\Sigma_b\\Sigma_a^{1/2}`,
    which is stabler than a general matrix square root.
    """
    arrays = []
    for name, f in (("features_a", features_a), ("features_b", features_b)):
        try:
            arr = np.asarray(f.detach().cpu() if isinstance(f, torch.Tensor) else f, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must be a numeric (N, D) array, got {type(f).__name__}") from err
        if arr.ndim != 2 or len(arr) < 2:
            raise ValueError(f"{name} must have shape (N, D) with N >= 2, got {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} must be finite, got {int((~np.isfinite(arr)).sum())} NaN or inf value(s)")
        arrays.append(arr)
    a, b = arrays
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features_b must have the width D = {a.shape[1]} of features_a, got {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    evals, evecs = np.linalg.eigh(cov_a)
    sqrt_a = (evecs * np.sqrt(np.clip(evals, 0, None))) @ evecs.T
    middle = sqrt_a @ cov_b @ sqrt_a
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


def frechet_digit_distance(images_a: torch.Tensor, images_b: torch.Tensor) -> float:
    """FDD: the Fréchet distance between two image sets in the classifier's feature space."""
    _check_images(images_a, "images_a")
    _check_images(images_b, "images_b")
    feats_a = _batched(lambda m, x: m.features(x), images_a)
    feats_b = _batched(lambda m, x: m.features(x), images_b)
    return frechet_distance(feats_a, feats_b)


def nearest_neighbour_distances(
    samples: torch.Tensor, reference: torch.Tensor, return_indices: bool = False
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Euclidean pixel distance from each sample to its nearest reference image. ``(N,)``.

    With ``return_indices=True`` also returns which reference image is nearest, ``(N,)`` long,
    so that a sample can be shown beside its closest training image.
    """
    check_tensor(samples, "samples", floating=True)
    check_tensor(reference, "reference", floating=True)
    if samples.ndim < 2 or reference.ndim < 2 or samples.shape[1:] != reference.shape[1:]:
        raise ValueError(f"reference must share the per-item shape of samples, got {tuple(samples.shape)} "
                         f"and {tuple(reference.shape)}")
    if len(reference) == 0:
        raise ValueError("reference must hold at least one item to measure distances to")
    check_finite(samples, "samples")
    check_finite(reference, "reference")
    a = samples.reshape(len(samples), -1).float().cpu()
    b = reference.reshape(len(reference), -1).float().cpu()
    nearest = torch.cdist(a, b).min(dim=1)
    return (nearest.values, nearest.indices) if return_indices else nearest.values
