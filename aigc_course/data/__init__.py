"""Data sets the course uses, all local: nothing is downloaded. One module per kind of data:

* :mod:`~aigc_course.data.text` -- :func:`python_corpus`, text read from the local Python
  standard library's source (Chapters 1 and 3.1), split by file into train / validation / test;
* :mod:`~aigc_course.data.mixtures` -- :func:`ring_gaussians`, :func:`grid_gaussians`, the 2-D
  mixtures of the GAN mode-collapse literature (VEEGAN, PacGAN); :func:`ring_log_density` is
  the ring's exact density;
* :mod:`~aigc_course.data.digits` -- :func:`load_digits`, scikit-learn's 8x8 handwritten
  digits, scaled to ``[0, 1]`` (ink / 16), with a fixed stratified train/test split;
* :mod:`~aigc_course.data.scenes` -- :func:`captioned_scenes`, coloured shapes with captions
  (Chapter 5), drawn by code, with a split of held-out compositions;
* :mod:`~aigc_course.data.moving` -- :func:`moving_scenes`, captioned clips of one shape moving
  left, right, up or down (Chapter 2.3.4), with held-out object x motion combinations.

Every name is importable from ``aigc_course.data`` directly.
"""

from aigc_course.data.digits import DIGIT_NAMES, DigitsSplit, load_digits
from aigc_course.data.mixtures import (
    grid_centers,
    grid_gaussians,
    ring_centers,
    ring_gaussians,
    ring_log_density,
)
from aigc_course.data.moving import (
    HELD_OUT_MOTIONS,
    MOTIONS,
    VIDEO_CAPTION_WORDS,
    all_video_attributes,
    moving_scenes,
    parse_video_caption,
)
from aigc_course.data.scenes import (
    CAPTION_WORDS,
    HELD_OUT_PAIRS,
    PAIR_KEYS,
    SINGLE_KEYS,
    SceneObject,
    all_scene_attributes,
    canonical_attributes,
    captioned_scenes,
    parse_caption,
    render_scene,
)
from aigc_course.data.text import (
    CORPUS_ALPHABET,
    TextCorpus,
    decode_chars,
    encode_chars,
    normalize_text,
    python_corpus,
    read_text_file,
    stdlib_dir,
)

__all__ = [
    "CAPTION_WORDS",
    "CORPUS_ALPHABET",
    "DIGIT_NAMES",
    "HELD_OUT_MOTIONS",
    "HELD_OUT_PAIRS",
    "MOTIONS",
    "PAIR_KEYS",
    "SINGLE_KEYS",
    "DigitsSplit",
    "SceneObject",
    "VIDEO_CAPTION_WORDS",
    "TextCorpus",
    "all_scene_attributes",
    "all_video_attributes",
    "canonical_attributes",
    "captioned_scenes",
    "decode_chars",
    "encode_chars",
    "grid_centers",
    "grid_gaussians",
    "load_digits",
    "moving_scenes",
    "normalize_text",
    "parse_caption",
    "parse_video_caption",
    "python_corpus",
    "read_text_file",
    "render_scene",
    "ring_centers",
    "ring_gaussians",
    "ring_log_density",
    "stdlib_dir",
]
