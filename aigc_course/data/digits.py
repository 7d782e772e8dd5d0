"""scikit-learn's 8x8 handwritten digits, scaled to ``[0, 1]`` (ink / 16), with a fixed split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from aigc_course._checks import check_int, check_number

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass(frozen=True)
class DigitsSplit:
    """scikit-learn's digits as tensors: images ``(N, 1, 8, 8)`` in ``[0, 1]``, labels ``(N,)``."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits(test_size: float = 0.2, seed: int = 0) -> DigitsSplit:
    """scikit-learn's 1,797 digits, ink / 16, split stratified with a fixed seed.

    The default split (20 % test, seed 0) is the one every chapter and checkpoint uses:
    1,437 training and 360 test images.
    """
    test_size = check_number(test_size, "test_size", low=0, high=1, low_open=True, high_open=True)
    seed = check_int(seed, "seed", low=0, high=2**32 - 1)
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=test_size, random_state=seed, stratify=labels
    )
    return DigitsSplit(torch.from_numpy(x_tr), torch.from_numpy(y_tr), torch.from_numpy(x_te), torch.from_numpy(y_te))
