"""Reliability tables and the expected calibration error (book 8.5) against a direct loop."""

from __future__ import annotations

import math

import pytest
import torch

from aigc_course.metrics.calibration import expected_calibration_error, reliability_table


def loop_ece(confidence, correct, n_bins):
    total = 0.0
    for b in range(n_bins):
        low, high = b / n_bins, (b + 1) / n_bins
        members = [i for i, c in enumerate(confidence) if low <= c < high or (b == n_bins - 1 and c == 1.0)]
        if members:
            acc = sum(correct[i] for i in members) / len(members)
            conf = sum(confidence[i] for i in members) / len(members)
            total += len(members) / len(confidence) * abs(acc - conf)
    return total


def test_ece_equals_a_direct_loop():
    g = torch.Generator().manual_seed(0)
    confidence = torch.rand(300, generator=g)
    confidence[:5] = torch.tensor([0.0, 1.0, 0.1, 0.5, 0.9])  # on the edges
    correct = torch.rand(300, generator=g) < confidence ** 2
    for n_bins in (1, 5, 10, 15):
        expected = loop_ece(confidence.tolist(), correct.tolist(), n_bins)
        assert expected_calibration_error(confidence, correct, n_bins) == pytest.approx(expected, abs=1e-7)  # float32 inputs


def test_calibrated_and_overconfident_models():
    g = torch.Generator().manual_seed(1)
    confidence = torch.rand(20000, generator=g)
    calibrated = torch.rand(20000, generator=g) < confidence
    assert expected_calibration_error(confidence, calibrated) < 0.02
    # always 95 % sure, right half the time: ECE = 0.45
    sure = torch.full((100,), 0.95, dtype=torch.float64)
    assert expected_calibration_error(sure, torch.arange(100) % 2 == 0) == pytest.approx(0.45)
    table = reliability_table(sure, torch.arange(100) % 2 == 0)
    assert table.counts.tolist() == [0] * 9 + [100] and math.isnan(float(table.accuracy[0]))
    assert float(table.accuracy[9]) == 0.5 and float(table.confidence[9]) == pytest.approx(0.95)


@pytest.mark.parametrize("call,name", [
    (lambda: expected_calibration_error([], []), "confidence"),
    (lambda: expected_calibration_error([0.5, 1.5], [True, False]), "confidence"),
    (lambda: expected_calibration_error([0.5, float("nan")], [True, False]), "confidence"),
    (lambda: expected_calibration_error([0.5, 0.5], [True]), "correct"),
    (lambda: expected_calibration_error([0.5, 0.5], [2, 0]), "correct"),
    (lambda: reliability_table([0.5], [True], n_bins=0), "n_bins"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
