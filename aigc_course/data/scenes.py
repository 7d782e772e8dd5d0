"""Captioned scenes of simple coloured shapes, drawn by code (Chapter 5, text-to-image).

A scene is one object or two objects on a black canvas, with a caption that describes it
exactly:

* one object -- ``"a small red circle at the top left"``: a size, a colour, a shape and one
  of nine positions on a 3x3 grid;
* two objects in a spatial relation -- ``"a red circle above a blue square"``: two
  (colour, shape) objects of one medium size, side by side in a column (``above``/``below``)
  or a row (``left of``/``right of``), anywhere along it.

The grammar has 4 shapes x 4 colours, 2 sizes, 9 positions and 4 relations: 288 one-object
and 1,024 two-object captions. :func:`captioned_scenes` returns ``(images, captions,
attributes)``; each attribute dict is flat and holds strings only:

* one object: ``{"shape", "colour", "size", "position"}`` (:data:`SINGLE_KEYS`);
* two objects: ``{"shape_1", "colour_1", "relation", "shape_2", "colour_2"}``
  (:data:`PAIR_KEYS`); object 1 is the one named first, so ``"a red circle below a blue
  square"`` has ``colour_1 = "red"`` and ``relation = "below"``.

**Held-out compositions.** The four (colour, shape) pairs of :data:`HELD_OUT_PAIRS` never
appear in ``split="train"``, not even as one object of two; ``split="held_out"`` holds
exactly the scenes with at least one of them. Every colour and every shape on its own is
seen in training (with three partners each): only the combination is new.

**Renderer.** :func:`render_scene` draws any list of :class:`SceneObject` -- a shape, an RGB
colour, a centre anywhere in the image (continuous coordinates, not only the grid cells) and
a radius -- with 4x4 supersampled anti-aliasing. Later objects are painted over earlier ones.
Everything is computed in float64 from integer sub-pixel counts and stored at 8 bits, and all
randomness comes from Python's ``random.Random`` seeded by a string, so the same arguments
give the same bytes on every machine.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass

import numpy as np
import torch

IMAGE_SIZE = 32
SHAPES = ("circle", "square", "triangle", "cross")
COLOURS = {  # RGB in [0, 1], on a black (0) background
    "red": (0.90, 0.15, 0.15),
    "green": (0.15, 0.75, 0.25),
    "blue": (0.20, 0.40, 1.00),
    "yellow": (0.95, 0.85, 0.15),
}
SIZES = {"small": 0.11, "large": 0.19}  # object radius, as a fraction of the image side
PAIR_RADIUS = 0.15  # both objects of a two-object scene
# Centre (x, y) of each grid cell, as fractions of the side; y grows downwards.
POSITIONS = {
    "top left": (0.23, 0.23), "top": (0.50, 0.23), "top right": (0.77, 0.23),
    "left": (0.23, 0.50), "middle": (0.50, 0.50), "right": (0.77, 0.50),
    "bottom left": (0.23, 0.77), "bottom": (0.50, 0.77), "bottom right": (0.77, 0.77),
}
POSITION_PHRASES = {
    "top left": "at the top left", "top": "at the top", "top right": "at the top right",
    "left": "on the left", "middle": "in the middle", "right": "on the right",
    "bottom left": "at the bottom left", "bottom": "at the bottom", "bottom right": "at the bottom right",
}
RELATIONS = {"above": "above", "below": "below", "left of": "to the left of", "right of": "to the right of"}
# One pair per colour and per shape (a Latin-square diagonal), so each value keeps 3 partners.
HELD_OUT_PAIRS = (("red", "triangle"), ("green", "cross"), ("blue", "circle"), ("yellow", "square"))
SINGLE_KEYS = ("shape", "colour", "size", "position")
PAIR_KEYS = ("shape_1", "colour_1", "relation", "shape_2", "colour_2")
SPLITS = ("train", "held_out")

# Random variation of a rendered scene (uniform, +-): fractions of the side / of the radius / RGB.
POSITION_JITTER = 0.03
RADIUS_JITTER = 0.06
COLOUR_JITTER = 0.05
SUPERSAMPLE = 4


# --------------------------------------------------------------------------- the renderer


@dataclass(frozen=True)
class SceneObject:
    """One shape to draw: centre ``(x, y)`` and ``radius`` as fractions of the image side.

    ``x`` runs left to right and ``y`` top to bottom, both continuous (an object can sit
    between grid cells or move by sub-pixel steps); ``rgb`` is a colour in ``[0, 1]^3``.
    """

    shape: str
    rgb: tuple[float, float, float]
    x: float
    y: float
    radius: float

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, got {self.shape!r}")
        if len(self.rgb) != 3 or not all(0.0 <= c <= 1.0 for c in self.rgb):
            raise ValueError(f"rgb must be three values in [0, 1], got {self.rgb!r}")
        if not self.radius > 0:
            raise ValueError(f"radius must be positive, got {self.radius!r}")


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Which points ``(u, v)`` (in units of the radius, v downwards) lie inside ``shape``."""
    if shape == "circle":
        return u * u + v * v <= 1.0
    if shape == "square":
        return (np.abs(u) <= 0.85) & (np.abs(v) <= 0.85)
    if shape == "triangle":  # apex up, base at v = 0.8
        return (v <= 0.8) & (np.abs(u) * 1.85 <= 1.1 * (v + 1.05))
    if shape == "cross":  # a plus sign with arms of half-width 0.35
        au, av = np.abs(u), np.abs(v)
        return ((au <= 0.35) & (av <= 1.0)) | ((av <= 0.35) & (au <= 1.0))
    raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")


def draw_object(canvas: np.ndarray, obj: SceneObject) -> None:
    """Paint ``obj`` onto ``canvas`` ``(3, H, W)`` (float64, in place), anti-aliased.

    Each pixel is split into 4x4 sub-pixels; the share of sub-pixels inside the shape is the
    pixel's coverage ``a``, and the pixel becomes ``(1 - a) * old + a * rgb``.
    """
    _, h, w = canvas.shape
    s = SUPERSAMPLE
    reach = 1.15 * obj.radius  # every shape fits in this box around its centre
    x0, x1 = max(0, int((obj.x - reach) * w)), min(w, int((obj.x + reach) * w) + 1)
    y0, y1 = max(0, int((obj.y - reach) * h)), min(h, int((obj.y + reach) * h) + 1)
    if x0 >= x1 or y0 >= y1:
        return  # entirely outside the canvas
    xs = (np.arange(x0 * s, x1 * s) + 0.5) / (s * w)  # sub-pixel centres, fractions of the side
    ys = (np.arange(y0 * s, y1 * s) + 0.5) / (s * h)
    u = (xs[None, :] - obj.x) / obj.radius
    v = (ys[:, None] - obj.y) / obj.radius
    counts = _inside(obj.shape, u, v).reshape(y1 - y0, s, x1 - x0, s).sum(axis=(1, 3))
    alpha = counts / (s * s)  # exact: a count over 16
    region = canvas[:, y0:y1, x0:x1]
    rgb = np.asarray(obj.rgb, dtype=np.float64)[:, None, None]
    canvas[:, y0:y1, x0:x1] = region * (1.0 - alpha) + rgb * alpha


def _check_image_size(image_size) -> None:
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"image_size must be an int >= 8, got {image_size!r}")


def render_scene(objects: list[SceneObject], image_size: int = IMAGE_SIZE) -> torch.Tensor:
    """Draw ``objects`` in order on a black canvas: a float32 tensor ``(3, S, S)`` in ``[0, 1]``.

    Values are rounded to 8 bits (multiples of 1/255), as a PNG would store them.
    """
    _check_image_size(image_size)
    canvas = np.zeros((3, image_size, image_size), dtype=np.float64)
    for obj in objects:
        if not isinstance(obj, SceneObject):
            raise ValueError(f"objects must be SceneObject instances, got {type(obj).__name__}")
        draw_object(canvas, obj)
    pixels = np.rint(np.clip(canvas, 0.0, 1.0) * 255.0).astype(np.uint8)
    return torch.from_numpy(pixels).float() / 255.0


# --------------------------------------------------------------------------- the grammar


def caption(attributes: dict[str, str]) -> str:
    """The caption of a scene's attributes: ``"a small red circle at the top left"``."""
    kind = _kind(attributes)
    a = attributes
    if kind == "single":
        return f"a {a['size']} {a['colour']} {a['shape']} {POSITION_PHRASES[a['position']]}"
    return f"a {a['colour_1']} {a['shape_1']} {RELATIONS[a['relation']]} a {a['colour_2']} {a['shape_2']}"


def _kind(attributes) -> str:
    if not isinstance(attributes, dict):
        raise ValueError(f"attributes must be a dict, got {type(attributes).__name__}")
    keys = set(attributes)
    kind = "single" if keys == set(SINGLE_KEYS) else "pair" if keys == set(PAIR_KEYS) else None
    if kind is None:
        raise ValueError(f"attributes must have the keys {SINGLE_KEYS} or {PAIR_KEYS}, got {sorted(keys)}")
    allowed = {"shape": SHAPES, "colour": tuple(COLOURS), "size": tuple(SIZES),
               "position": tuple(POSITIONS), "relation": tuple(RELATIONS)}
    for key, value in attributes.items():
        options = allowed[key.split("_")[0]]
        if value not in options:
            raise ValueError(f"attributes[{key!r}] must be one of {options}, got {value!r}")
    return kind


def _all_attributes() -> list[dict[str, str]]:
    singles = [{"shape": s, "colour": c, "size": z, "position": p}
               for s, c, z, p in itertools.product(SHAPES, COLOURS, SIZES, POSITIONS)]
    objects = list(itertools.product(SHAPES, COLOURS))
    pairs = [{"shape_1": s1, "colour_1": c1, "relation": r, "shape_2": s2, "colour_2": c2}
             for (s1, c1), r, (s2, c2) in itertools.product(objects, RELATIONS, objects)]
    return singles + pairs


def object_pairs(attributes: dict[str, str]) -> list[tuple[str, str]]:
    """The (colour, shape) of each object of a scene, in caption order."""
    if _kind(attributes) == "single":
        return [(attributes["colour"], attributes["shape"])]
    return [(attributes["colour_1"], attributes["shape_1"]), (attributes["colour_2"], attributes["shape_2"])]


def split_of(attributes: dict[str, str]) -> str:
    """``"held_out"`` if any object is a pair of :data:`HELD_OUT_PAIRS`, else ``"train"``."""
    return "held_out" if any(p in HELD_OUT_PAIRS for p in object_pairs(attributes)) else "train"


def _check_split(split) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def all_scene_attributes(split: str | None = None) -> list[dict[str, str]]:
    """Every scene of the grammar (1,312), or only those of ``split``: one-object scenes first."""
    scenes = _all_attributes()
    if split is None:
        return scenes
    _check_split(split)
    return [a for a in scenes if split_of(a) == split]


_CAPTIONS: dict[str, dict[str, str]] = {caption(a): a for a in _all_attributes()}
CAPTION_WORDS = tuple(sorted({w for c in _CAPTIONS for w in c.split()}))


def normalize_caption(text: str) -> str:
    """Lower case, single spaces, no leading/trailing space or final full stop."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    return re.sub(r"\s+", " ", text.strip().lower()).removesuffix(".").strip()


def parse_caption(text: str) -> dict[str, str]:
    """The attributes of a caption of the grammar (after :func:`normalize_caption`).

    Raises ``ValueError`` for text the grammar cannot produce, naming the words it does not
    know, if any.
    """
    norm = normalize_caption(text)
    if norm in _CAPTIONS:
        return dict(_CAPTIONS[norm])
    unknown = sorted({w for w in norm.split() if w not in CAPTION_WORDS})
    why = f"words outside the grammar: {unknown}" if unknown else "the words are known but not in this order"
    raise ValueError(
        f"text {text!r} is not a caption of the scene grammar ({why}); "
        "examples: 'a small red circle at the top left', 'a red circle above a blue square'"
    )


def canonical_attributes(attributes: dict[str, str]) -> dict[str, str]:
    """Two-object scenes rewritten with ``relation`` ``"above"`` or ``"left of"``.

    ``"a red circle below a blue square"`` and ``"a blue square above a red circle"`` are the
    same picture; this form names the top (or left) object first, so that one image has one
    answer. One-object scenes are returned unchanged (as a copy).
    """
    a = dict(attributes)
    if _kind(a) == "single" or a["relation"] in ("above", "left of"):
        return a
    flipped = {"below": "above", "right of": "left of"}[a["relation"]]
    return {"shape_1": a["shape_2"], "colour_1": a["colour_2"], "relation": flipped,
            "shape_2": a["shape_1"], "colour_2": a["colour_1"]}


# --------------------------------------------------------------------------- sampling


def _jitter(rng: random.Random, value: float, amount: float) -> float:
    return value + rng.uniform(-amount, amount)


def _rgb(rng: random.Random, colour: str) -> tuple[float, float, float]:
    return tuple(min(1.0, max(0.0, _jitter(rng, c, COLOUR_JITTER))) for c in COLOURS[colour])


def scene_objects(attributes: dict[str, str], rng: random.Random) -> list[SceneObject]:
    """Place the objects of a scene, with random jitter drawn from ``rng``.

    One object: its grid cell's centre +-0.03 of the side, radius +-6 %. Two objects: a shared
    column (or row) anywhere between 0.22 and 0.78 of the side; the first-named object in the
    upper (or left) band 0.20-0.32 for ``above`` (``left of``), in the lower (right) band
    0.68-0.80 for ``below`` (``right of``). Colours vary by +-0.05 per channel.
    """
    if _kind(attributes) == "single":
        x, y = POSITIONS[attributes["position"]]
        radius = SIZES[attributes["size"]] * _jitter(rng, 1.0, RADIUS_JITTER)
        rgb = _rgb(rng, attributes["colour"])
        return [SceneObject(attributes["shape"], rgb, _jitter(rng, x, POSITION_JITTER),
                            _jitter(rng, y, POSITION_JITTER), radius)]
    line = rng.uniform(0.22, 0.78)  # the column (vertical relations) or row (horizontal) they share
    first_near = attributes["relation"] in ("above", "left of")
    near, far = rng.uniform(0.20, 0.32), rng.uniform(0.68, 0.80)
    along = (near, far) if first_near else (far, near)
    objects = []
    for i, pos in zip((1, 2), along, strict=True):
        across = _jitter(rng, line, POSITION_JITTER)
        x, y = (across, pos) if attributes["relation"] in ("above", "below") else (pos, across)
        radius = PAIR_RADIUS * _jitter(rng, 1.0, RADIUS_JITTER)
        rgb = _rgb(rng, attributes[f"colour_{i}"])
        objects.append(SceneObject(attributes[f"shape_{i}"], rgb, x, y, radius))
    return objects


def sample_attributes(rng: random.Random, split: str = "train") -> dict[str, str]:
    """One scene of ``split``: one object or two with equal probability, then uniform."""
    pool = _POOLS[_check_split(split)]
    kind = "single" if rng.random() < 0.5 else "pair"
    return dict(rng.choice(pool[kind]))


_POOLS = {
    split: {"single": [a for a in all_scene_attributes(split) if set(a) == set(SINGLE_KEYS)],
            "pair": [a for a in all_scene_attributes(split) if set(a) == set(PAIR_KEYS)]}
    for split in SPLITS
}


def captioned_scenes(
    n: int, seed: int = 0, split: str = "train", *, image_size: int = IMAGE_SIZE
) -> tuple[torch.Tensor, list[str], list[dict[str, str]]]:
    """``n`` random scenes of ``split``: ``(images, captions, attributes)``.

    * ``images`` -- float32 ``(n, 3, image_size, image_size)`` in ``[0, 1]`` (0 is the black
      background), 8-bit values;
    * ``captions`` -- ``n`` strings such as ``"a small red circle at the top left"``;
    * ``attributes`` -- ``n`` flat dicts of strings, keys :data:`SINGLE_KEYS` or :data:`PAIR_KEYS`.

    ``split="train"`` never shows a pair of :data:`HELD_OUT_PAIRS`; ``split="held_out"`` always
    shows at least one. The same ``(n, seed, split)`` gives the same output on every machine,
    and the first ``k`` scenes do not depend on ``n``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    _check_split(split)
    _check_image_size(image_size)
    rng = random.Random(f"aigc_course.captioned_scenes/{split}/{seed}")  # str seeds hash with SHA-512
    images = torch.empty(n, 3, image_size, image_size)
    captions, attributes = [], []
    for i in range(n):
        attrs = sample_attributes(rng, split)
        images[i] = render_scene(scene_objects(attrs, rng), image_size)
        captions.append(caption(attrs))
        attributes.append(attrs)
    return images, captions, attributes
