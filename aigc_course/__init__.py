"""AIGC from Zero to Practice: the code the course teaches.

One module per idea. Start with :mod:`aigc_course.runtime` (device and seeds),
:mod:`aigc_course.pretrained` (shipped checkpoints) and :mod:`aigc_course.training`
(the training loop every chapter uses).
"""

from aigc_course.runtime import get_device, make_generator, seed_everything

__version__ = "0.1.0"
__all__ = ["__version__", "get_device", "make_generator", "seed_everything"]
