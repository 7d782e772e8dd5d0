"""Captioned clips of one shape moving across the frame, drawn by code (Chapter 2.3.4, text-to-video).

A clip is ``num_frames`` frames of one object -- a size, a colour and a shape of the captioned
scenes (:mod:`aigc_course.data.scenes`) -- moving in a straight line at a steady speed, with a
caption that ends with its direction: ``"a small red circle moving left"``. The grammar has
2 sizes x 4 colours x 4 shapes x 4 motions = 128 captions.

Each frame is drawn by :func:`~aigc_course.data.scenes.render_scene` (4x4 supersampled
anti-aliasing, 8-bit values) at :data:`VIDEO_SIZE` = 16 pixels a side, small enough to train a
video model on a CPU. The object travels :data:`TRAVEL` (0.30-0.42 of the side) over the whole
clip, from a random start chosen so that it stays inside the frame; the other coordinate is
fixed. Radius and colour are jittered once per clip, as in the scenes, so the object keeps its
identity from frame to frame.

**Held-out combinations.** For the object ``(colour i, shape j)`` the motion
``MOTIONS[(i + j) % 4]`` never appears in ``split="train"`` (:data:`HELD_OUT_MOTIONS`, a
Latin square: 16 of the 64 object x motion pairs). Every colour, shape, size and motion --
and every object -- is seen in training; only these pairings are new.

All randomness comes from Python's ``random.Random`` seeded by a string, so the same arguments
give the same bytes on every machine, and the first ``k`` clips do not depend on ``n``.
"""

from __future__ import annotations

import itertools
import random

import torch

from aigc_course.data.scenes import (
    COLOURS,
    RADIUS_JITTER,
    SHAPES,
    SIZES,
    SceneObject,
    normalize_caption,
    render_scene,
)

VIDEO_SIZE = 16
NUM_FRAMES = 8
MOTIONS = ("left", "right", "up", "down")
# Unit step per motion as (dx, dy) in image fractions; y grows downwards.
DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}
TRAVEL = (0.30, 0.42)  # distance covered over the whole clip, a fraction of the side
VIDEO_KEYS = ("shape", "colour", "size", "motion")
SPLITS = ("train", "held_out")
COLOUR_JITTER = 0.05
_REACH = 1.15  # every shape fits within 1.15 radii of its centre (scenes.draw_object)

#: (colour, shape) -> the motion never trained with that object (a Latin square over the 4x4 objects).
HELD_OUT_MOTIONS: dict[tuple[str, str], str] = {
    (colour, shape): MOTIONS[(i + j) % len(MOTIONS)]
    for (i, colour), (j, shape) in itertools.product(enumerate(COLOURS), enumerate(SHAPES))
}


def video_caption(attributes: dict[str, str]) -> str:
    """``{"size": "small", "colour": "red", "shape": "circle", "motion": "left"}`` -> ``"a small red circle moving left"``."""
    _check_attributes(attributes)
    a = attributes
    return f"a {a['size']} {a['colour']} {a['shape']} moving {a['motion']}"


def _check_attributes(attributes) -> None:
    if not isinstance(attributes, dict) or set(attributes) != set(VIDEO_KEYS):
        got = sorted(attributes) if isinstance(attributes, dict) else type(attributes).__name__
        raise ValueError(f"attributes must be a dict with the keys {VIDEO_KEYS}, got {got}")
    allowed = {"shape": SHAPES, "colour": tuple(COLOURS), "size": tuple(SIZES), "motion": MOTIONS}
    for key, value in attributes.items():
        if value not in allowed[key]:
            raise ValueError(f"attributes[{key!r}] must be one of {allowed[key]}, got {value!r}")


def video_split_of(attributes: dict[str, str]) -> str:
    """``"held_out"`` if the clip pairs its object with its held-out motion, else ``"train"``."""
    _check_attributes(attributes)
    held_out = HELD_OUT_MOTIONS[(attributes["colour"], attributes["shape"])] == attributes["motion"]
    return "held_out" if held_out else "train"


def _check_split(split) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def all_video_attributes(split: str | None = None) -> list[dict[str, str]]:
    """Every clip description of the grammar (128), or only those of ``split`` (96 train, 32 held out)."""
    every = [{"shape": s, "colour": c, "size": z, "motion": m}
             for s, c, z, m in itertools.product(SHAPES, COLOURS, SIZES, MOTIONS)]
    if split is None:
        return every
    _check_split(split)
    return [a for a in every if video_split_of(a) == split]


_CAPTIONS = {video_caption(a): a for a in all_video_attributes()}
VIDEO_CAPTION_WORDS = tuple(sorted({w for c in _CAPTIONS for w in c.split()}))


def parse_video_caption(text: str) -> dict[str, str]:
    """The attributes of a caption of the grammar; ``ValueError`` naming the unknown words otherwise."""
    norm = normalize_caption(text)
    if norm in _CAPTIONS:
        return dict(_CAPTIONS[norm])
    unknown = sorted({w for w in norm.split() if w not in VIDEO_CAPTION_WORDS})
    why = f"words outside the grammar: {unknown}" if unknown else "the words are known but not in this order"
    raise ValueError(f"text {text!r} is not a caption of the moving-scenes grammar ({why}); "
                     "example: 'a small red circle moving left'")


def clip_objects(attributes: dict[str, str], rng: random.Random, num_frames: int = NUM_FRAMES) -> list[SceneObject]:
    """The object of each frame of a clip: one :class:`SceneObject` per frame, drawn from ``rng``.

    Radius (+-6 %) and colour (+-0.05 per channel) are drawn once; the start is uniform over the
    positions that keep the whole path inside the frame; the centre then moves by
    ``travel / (num_frames - 1)`` per frame (one frame: the start).
    """
    _check_attributes(attributes)
    radius = SIZES[attributes["size"]] * rng.uniform(1 - RADIUS_JITTER, 1 + RADIUS_JITTER)
    rgb = tuple(min(1.0, max(0.0, c + rng.uniform(-COLOUR_JITTER, COLOUR_JITTER))) for c in COLOURS[attributes["colour"]])
    travel = rng.uniform(*TRAVEL)
    lo, hi = _REACH * radius, 1.0 - _REACH * radius  # where the centre may be
    dx, dy = DIRECTIONS[attributes["motion"]]
    along_start = rng.uniform(lo, hi - travel)  # position along the motion axis, as if moving right/down
    across = rng.uniform(lo, hi)
    step = travel / max(num_frames - 1, 1)
    objects = []
    for f in range(num_frames):
        along = along_start + f * step
        if dx < 0 or dy < 0:  # left / up: the same path walked backwards
            along = along_start + travel - f * step
        x, y = (along, across) if dx else (across, along)
        objects.append(SceneObject(attributes["shape"], rgb, x, y, radius))
    return objects


def render_clip(objects: list[SceneObject], image_size: int = VIDEO_SIZE) -> torch.Tensor:
    """One object per frame -> a clip ``(F, 3, S, S)`` in ``[0, 1]``."""
    return torch.stack([render_scene([obj], image_size) for obj in objects])


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def moving_scenes(
    n: int, seed: int = 0, num_frames: int = NUM_FRAMES, split: str = "train", *, image_size: int = VIDEO_SIZE
) -> tuple[torch.Tensor, list[str], list[dict[str, str]]]:
    """``n`` random clips of ``split``: ``(videos, captions, attributes)``.

    * ``videos`` -- float32 ``(n, num_frames, 3, image_size, image_size)`` in ``[0, 1]``
      (0 is the black background), 8-bit values;
    * ``captions`` -- ``n`` strings such as ``"a small red circle moving left"``;
    * ``attributes`` -- ``n`` flat dicts of strings with the keys :data:`VIDEO_KEYS`
      (``"shape"``, ``"colour"``, ``"size"``, ``"motion"``).

    Descriptions are uniform over those of ``split`` (:func:`all_video_attributes`). The same
    ``(n, seed, num_frames, split, image_size)`` gives the same output on every machine.
    """
    _check_positive_int(n, "n")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    _check_positive_int(num_frames, "num_frames")
    _check_split(split)
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"image_size must be an int >= 8, got {image_size!r}")
    pool = all_video_attributes(split)
    rng = random.Random(f"aigc_course.moving_scenes/{split}/{seed}/{num_frames}")  # str seeds hash with SHA-512
    videos = torch.empty(n, num_frames, 3, image_size, image_size)
    captions, attributes = [], []
    for i in range(n):
        attrs = dict(rng.choice(pool))
        videos[i] = render_clip(clip_objects(attrs, rng, num_frames), image_size)
        captions.append(video_caption(attrs))
        attributes.append(attrs)
    return videos, captions, attributes
