"""Measuring generated samples.

* :mod:`aigc_course.metrics.digits` -- a digit classifier trained on the real train split,
  and the scores built on it: classifier accuracy, the Fréchet digit distance (FDD) and a
  nearest-neighbour memorisation check.
* :mod:`aigc_course.metrics.modes` -- mode coverage of 2-D samples (the VEEGAN / PacGAN
  protocol): modes captured, high-quality fraction, reverse KL to uniform.
"""

from aigc_course.metrics.digits import (
    DigitClassifier,
    classifier_accuracy,
    frechet_digit_distance,
    frechet_distance,
    load_digit_classifier,
    nearest_neighbour_distances,
)
from aigc_course.metrics.modes import ModeCoverage, grid_coverage, mode_coverage, ring_coverage

__all__ = [
    "DigitClassifier",
    "ModeCoverage",
    "classifier_accuracy",
    "frechet_digit_distance",
    "frechet_distance",
    "grid_coverage",
    "load_digit_classifier",
    "mode_coverage",
    "nearest_neighbour_distances",
    "ring_coverage",
]
