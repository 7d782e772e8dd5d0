"""Judging generated clips of moving shapes from their pixels (Chapter 2.3.4).

The clips are 16x16, half the size the course's learned scene judge
(:mod:`aigc_course.metrics.scenes`, 32x32) reads, so these judges are exact measurements
instead: the scenes are drawn by a known renderer on a black background, and each frame can
be *explained* by it.

* **Per frame** (:func:`read_frame`): the object's coverage of each pixel is its brightest
  channel; the centroid of that coverage is where the object is. The colour is the nearest
  palette colour in chromaticity (RGB divided by its largest channel, which removes the
  anti-aliased edge's dimming). Shape and size are found by analysis by synthesis: each of the
  4 shapes x 2 sizes is rendered (:func:`~aigc_course.data.scenes.render_scene`) centred on the
  measured centroid, and the one whose coverage map is closest to the frame's wins.
* **Motion** (:func:`read_clip`): a straight line is fitted to the centroid track over the
  frames; the direction of the larger component of its slope is the motion, or ``"still"``
  when the object travels less than :data:`MIN_TRAVEL` of the side over the clip.
* **Temporal consistency**: the object keeps its identity (the same shape, colour and size in
  every frame) and moves steadily (the track's distance from its fitted line stays under
  :data:`MAX_TRACK_RESIDUAL` of the side in every frame).

On real clips from :func:`aigc_course.data.moving_scenes` every judge is right in at least 99 %
of clips (``tests/test_video.py`` measures it).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch

from aigc_course.data.moving import VIDEO_KEYS
from aigc_course.data.scenes import COLOURS, SHAPES, SIZES, SceneObject, render_scene

FOREGROUND = 0.2  # a pixel's brightest channel above this is part of the object (below: background noise)
MIN_TRAVEL = 0.1  # fraction of the side: less travel over the clip reads as "still"
MAX_TRACK_RESIDUAL = 0.06  # fraction of the side: a frame this far off the fitted line is a jump
_CHROMA = {name: torch.tensor(rgb) / max(rgb) for name, rgb in COLOURS.items()}


def _check_clips(clips) -> None:
    if not isinstance(clips, torch.Tensor) or clips.ndim != 5 or clips.shape[2] != 3 or clips.shape[3] != clips.shape[4]:
        shape = tuple(clips.shape) if isinstance(clips, torch.Tensor) else type(clips).__name__
        raise ValueError(f"clips must be a tensor of shape (N, F, 3, S, S) in [0, 1], got {shape}")


_SUBPIXEL = 8  # templates are placed in steps of 1/8 pixel
_TEMPLATE_FOREGROUND = 0.25  # coverage that a palette colour turns into about FOREGROUND
_SCALES = (0.94, 1.0, 1.06)  # the renderer's radius jitter (scenes.RADIUS_JITTER = 6 %)
_CANDIDATES = [(shape, size) for shape in SHAPES for size in SIZES]


@lru_cache(maxsize=4)
def _templates(image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Coverage maps of every (shape, size) x radius scale x sub-pixel offset, and their centroid offsets.

    Returns ``maps (K, 3, 8, 8, S, S)`` -- a white object centred ``(o_x/8, o_y/8)`` pixels right
    of and below the image centre -- and ``offsets (K, 3, 2)``, each template's centroid minus
    its centre in pixels (a triangle's centroid lies below its centre), ``K = 8`` candidates.
    """
    s, n = image_size, _SUBPIXEL
    maps = torch.empty(len(_CANDIDATES), len(_SCALES), n, n, s, s)
    for k, (shape, size) in enumerate(_CANDIDATES):
        for r, scale in enumerate(_SCALES):
            for ox in range(n):
                for oy in range(n):
                    obj = SceneObject(shape, (1.0, 1.0, 1.0), (s / 2 + ox / n) / s, (s / 2 + oy / n) / s, SIZES[size] * scale)
                    coverage = render_scene([obj], s)[0]
                    maps[k, r, ox, oy] = coverage * (coverage > _TEMPLATE_FOREGROUND)  # as frames are thresholded
    centre = torch.tensor([s / 2, s / 2])
    offsets = torch.stack([torch.stack([torch.tensor(_centroid(maps[k, r, 0, 0])) * s - centre
                                        for r in range(len(_SCALES))]) for k in range(len(_CANDIDATES))])
    return maps, offsets


def _centroid(coverage: torch.Tensor) -> tuple[float, float]:
    s = coverage.shape[-1]
    grid = (torch.arange(s, dtype=coverage.dtype) + 0.5) / s
    total = coverage.sum()
    return float((coverage.sum(0) * grid).sum() / total), float((coverage.sum(1) * grid).sum() / total)


def _best_template(coverage: torch.Tensor, cx: float, cy: float) -> tuple[str, str]:
    """The (shape, size) whose rendering, placed on the centroid ``(cx, cy)`` (fractions), fits ``coverage`` best.

    Every candidate is tried at each radius scale and at the 3x3 sub-pixel positions around
    the placement that puts its centroid on the measured one; the smallest squared error wins.
    """
    s, n = coverage.shape[-1], _SUBPIXEL
    maps, offsets = _templates(s)
    k_count, r_count = offsets.shape[:2]
    centre = torch.tensor([cx * s, cy * s]) - offsets  # (K, R, 2) in pixels
    steps = torch.round((centre - s / 2) * n).long()  # in 1/8 pixel from the image centre
    nudge = torch.tensor([(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)])  # (9, 2)
    steps = steps[:, :, None, :] + nudge  # (K, R, 9, 2)
    sub, shift = steps % n, torch.div(steps, n, rounding_mode="floor")  # offset index, whole-pixel shift
    k_idx = torch.arange(k_count)[:, None, None].expand_as(sub[..., 0])
    r_idx = torch.arange(r_count)[None, :, None].expand_as(sub[..., 0])
    grid = torch.arange(s)
    rows = (grid - shift[..., 1, None]) % s  # (K, R, 9, S): output row i reads template row i - shift
    cols = (grid - shift[..., 0, None]) % s
    placed = maps[k_idx[..., None, None], r_idx[..., None, None], sub[..., 0, None, None], sub[..., 1, None, None],
                  rows[..., :, None], cols[..., None, :]]  # (K, R, 9, S, S)
    error = (placed - coverage).pow(2).sum((-1, -2)).amin((1, 2))  # (K,)
    return _CANDIDATES[int(error.argmin())]


def read_frame(frame: torch.Tensor) -> dict[str, str | float] | None:
    """One frame ``(3, S, S)`` -> ``{"shape", "colour", "size", "x", "y"}``, or None if it is empty.

    ``x``, ``y`` is the centroid of the object's coverage, in fractions of the side.
    """
    frame = frame.detach().float().cpu().clamp(0, 1)
    brightest = frame.amax(0)  # (S, S)
    mask = brightest > FOREGROUND
    if not mask.any():
        return None
    core = brightest >= 0.5 * brightest.max()  # the most covered pixels: the least diluted colour
    rgb = (frame * core).sum((1, 2)) / core.sum()
    chroma = rgb / rgb.max().clamp(min=1e-6)
    colour = min(_CHROMA, key=lambda name: float((_CHROMA[name] - chroma).pow(2).sum()))
    coverage = (brightest * mask) / max(COLOURS[colour])  # 1 where the object covers the pixel
    cx, cy = _centroid(coverage)
    shape, size = _best_template(coverage, cx, cy)
    return {"shape": shape, "colour": colour, "size": size, "x": cx, "y": cy}


def read_clip(clip: torch.Tensor) -> dict:
    """One clip ``(F, 3, S, S)`` -> what the judges read.

    ``{"frames": [read_frame per frame], "motion": "left"|"right"|"up"|"down"|"still"|"none",
    "travel": distance covered (fraction of the side), "identity_stable": bool,
    "steady": bool}``; ``"none"`` when some frame is empty (no motion can be read).
    """
    frames = [read_frame(f) for f in clip]
    out = {"frames": frames, "motion": "none", "travel": 0.0, "identity_stable": False, "steady": False}
    if any(f is None for f in frames):
        return out
    identities = {(f["shape"], f["colour"], f["size"]) for f in frames}
    out["identity_stable"] = len(identities) == 1
    if len(frames) == 1:
        out["motion"], out["steady"] = "still", True
        return out
    n = len(frames)
    t = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
    track = torch.tensor([[f["x"], f["y"]] for f in frames], dtype=torch.float64)  # (F, 2)
    slope = (t[:, None] * (track - track.mean(0))).sum(0) / (t * t).sum()  # least squares, per axis
    fitted = track.mean(0) + t[:, None] * slope
    out["steady"] = bool((track - fitted).norm(dim=1).max() <= MAX_TRACK_RESIDUAL)
    travel = slope * (n - 1)
    out["travel"] = float(travel.norm())
    if out["travel"] < MIN_TRAVEL:
        out["motion"] = "still"
    elif abs(travel[0]) >= abs(travel[1]):
        out["motion"] = "right" if travel[0] > 0 else "left"
    else:
        out["motion"] = "down" if travel[1] > 0 else "up"
    return out


def video_scores(clips: torch.Tensor, attributes: Sequence[dict[str, str]]) -> dict[str, float]:
    """How often ``clips (N, F, 3, S, S)`` show what ``attributes`` asked for; shares in ``[0, 1]``.

    * ``"motion"`` -- the judged direction is the one asked for;
    * ``"attributes"`` -- shape, colour and size are right in every frame;
    * ``"all"`` -- both;
    * ``"identity_stable"``, ``"steady"`` -- the two halves of temporal consistency, and
      ``"consistent"`` -- both (whatever was asked: a property of the clip alone);
    * ``"shape"``, ``"colour"``, ``"size"`` -- right in every frame, one by one.
    """
    _check_clips(clips)
    if isinstance(attributes, dict) or not isinstance(attributes, Sequence) or len(attributes) != len(clips):
        raise ValueError(f"attributes must be a list with one dict per clip ({len(clips)}), got "
                         f"{type(attributes).__name__} of length {len(attributes) if hasattr(attributes, '__len__') else '?'}")
    for i, a in enumerate(attributes):
        if not isinstance(a, dict) or not set(VIDEO_KEYS) <= set(a):
            raise ValueError(f"attributes[{i}] must be a dict with the keys {VIDEO_KEYS}, got {a!r:.80}")
    keys = ("motion", "attributes", "all", "identity_stable", "steady", "consistent", "shape", "colour", "size")
    right = {k: [] for k in keys}
    for clip, asked in zip(clips, attributes, strict=True):
        read = read_clip(clip)
        frames = read["frames"]
        per = {k: all(f is not None and f[k] == asked[k] for f in frames) for k in ("shape", "colour", "size")}
        right["motion"].append(read["motion"] == asked["motion"])
        right["attributes"].append(all(per.values()))
        right["all"].append(right["motion"][-1] and right["attributes"][-1])
        right["identity_stable"].append(read["identity_stable"])
        right["steady"].append(read["steady"])
        right["consistent"].append(read["identity_stable"] and read["steady"])
        for k, v in per.items():
            right[k].append(v)
    return {k: sum(v) / len(v) for k, v in right.items()}
