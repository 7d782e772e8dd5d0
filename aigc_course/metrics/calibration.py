"""Calibration: does a model's confidence match how often it is right? (book 8.5)

A model is *calibrated* when, among the answers it gives with confidence about ``p``, a share
``p`` is correct. The reliability table sorts answers into ``n_bins`` equal-width bins of
confidence, ``[0, 1/n), [1/n, 2/n), ..., [(n-1)/n, 1]``, and compares each bin's mean confidence
with its accuracy. The expected calibration error (Guo et al., 2017) is their gap, weighted by
how many answers fall in each bin::

    ECE = sum_b (n_b / N) * |accuracy_b - confidence_b|                    (eq. 8.5.1)

0 for a calibrated model; a model that says 0.95 and is right half the time scores 0.45.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class ReliabilityTable(NamedTuple):
    """Per confidence bin ``(n_bins,)``: how many answers, their mean confidence, their accuracy
    (NaN for an empty bin); ``edges (n_bins + 1,)`` are the bin boundaries."""

    counts: torch.Tensor
    confidence: torch.Tensor
    accuracy: torch.Tensor
    edges: torch.Tensor


def _check(confidence, correct, n_bins) -> tuple[torch.Tensor, torch.Tensor]:
    confidence = torch.as_tensor(confidence, dtype=torch.float64).cpu()
    correct = torch.as_tensor(correct).cpu()
    if confidence.dim() != 1 or len(confidence) == 0:
        raise ValueError(f"confidence must be a non-empty 1-D sequence, got shape {tuple(confidence.shape)}")
    if torch.isnan(confidence).any() or (confidence < 0).any() or (confidence > 1).any():
        raise ValueError("confidence must hold probabilities in [0, 1] (no NaN)")
    if correct.shape != confidence.shape:
        raise ValueError(f"correct must have the same shape as confidence {tuple(confidence.shape)}, "
                         f"got {tuple(correct.shape)}")
    if correct.dtype != torch.bool and not bool(((correct == 0) | (correct == 1)).all()):
        raise ValueError("correct must hold booleans (or 0/1)")
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive int, got {n_bins!r}")
    return confidence, correct.to(torch.float64)


def reliability_table(confidence, correct, n_bins: int = 10) -> ReliabilityTable:
    """Bin answers by ``confidence (N,)`` in ``[0, 1]`` and compare with ``correct (N,)`` (bool)."""
    confidence, correct = _check(confidence, correct, n_bins)
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    index = torch.bucketize(confidence, edges[1:-1], right=True)  # bin b holds [edge_b, edge_b+1)
    counts = torch.bincount(index, minlength=n_bins).to(torch.float64)
    conf_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, confidence)
    acc_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, correct)
    return ReliabilityTable(counts.long(), conf_sum / counts, acc_sum / counts, edges)


def expected_calibration_error(confidence, correct, n_bins: int = 10) -> float:
    """Eq. 8.5.1: the count-weighted mean of ``|accuracy - confidence|`` over the bins."""
    table = reliability_table(confidence, correct, n_bins)
    filled = table.counts > 0
    weights = table.counts[filled] / table.counts.sum()
    return float((weights * (table.accuracy[filled] - table.confidence[filled]).abs()).sum())
