"""One figure style for the whole book.

Call :func:`use_course_style` once at the top of a notebook (importing this module does
not change global state). The helpers return the matplotlib objects so a notebook can
add to them.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

# A colour-blind-safe palette (Okabe–Ito), used in this order by every figure.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")

COURSE_STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 120,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.frameon": False,
    "font.size": 10,
    "image.cmap": "viridis",
    "axes.prop_cycle": plt.cycler(color=list(PALETTE)),
}


# Fonts with Chinese glyphs, in order of preference; the first one installed is added after
# matplotlib's own font, which then draws every Latin glyph and falls back to it for Chinese.
# (CI installs Debian's fonts-wqy-zenhei; matplotlib ships no CJK font.)
CJK_FONTS = ("WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "AR PL UMing CN")


@functools.lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The first installed font of :data:`CJK_FONTS`, or None."""
    from matplotlib import font_manager

    def first() -> str | None:
        installed = {font.name for font in font_manager.fontManager.ttflist}
        return next((name for name in CJK_FONTS if name in installed), None)

    if first() is None:
        # matplotlib caches its font list on first use, so a font installed later is missing from it
        for path in font_manager.findSystemFonts():
            if any(key in Path(path).name.lower() for key in ("wqy", "notosanscjk", "notosanssc", "sourcehan", "uming")):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):  # an unreadable font file: skip it
                    continue
    found = first()
    if found is not None:
        # WenQuanYi Zen Hei declares weight 500; matplotlib asks for "normal" (400) and logs a
        # warning on every lookup, so a regular weight is recorded for the fonts it has no 400 of
        entries = [f for f in font_manager.fontManager.ttflist if f.name == found]
        if not any(f.weight in (400, "normal", "regular") for f in entries):
            font_manager.fontManager.ttflist += [dataclasses.replace(f, weight=400) for f in entries]
    return found


def can_draw_chinese() -> bool:
    """True when the current style can draw Chinese text (an installed CJK font is in its fallback list)."""
    font = cjk_font()
    return font is not None and font in plt.rcParams["font.family"]


def use_course_style() -> None:
    """Apply the course's matplotlib style to every later figure, with a Chinese fallback font
    when one is installed (:func:`cjk_font`): matplotlib falls back glyph by glyph only along an
    explicit list of families, so the style lists its sans-serif font and then the CJK one."""
    plt.rcParams.update(COURSE_STYLE)
    font = cjk_font()
    if font is not None:
        plt.rcParams["font.family"] = [plt.rcParams["font.sans-serif"][0], font]


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x)


def plot_loss(history_or_losses, ax=None, label: str | None = None, smooth: int = 1, **kwargs):
    """Plot a loss curve from a :class:`~aigc_course.training.History` or a list of floats.

    ``smooth`` > 1 draws a moving average over that many steps.
    """
    losses = getattr(history_or_losses, "loss", history_or_losses)
    y = np.asarray(list(losses), dtype=float)
    if smooth > 1 and len(y) >= smooth:
        y = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
    ax = ax or plt.subplots()[1]
    ax.plot(np.arange(len(y)) + (smooth - 1 if smooth > 1 else 0), y, label=label, **kwargs)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if label:
        ax.legend()
    return ax


def show_images(images, nrow: int | None = None, titles=None, ax=None, cmap: str = "gray_r", scale: float = 0.9):
    """Draw a grid of images ``(N, 1, H, W)``, ``(N, H, W)`` or colour ``(N, 3, H, W)``, values in ``[0, 1]``.

    Returns the figure. Titles, if given, go under each image.
    """
    arr = _to_numpy(images)
    if arr.ndim == 4 and arr.shape[1] == 3:
        arr = arr.transpose(0, 2, 3, 1)  # (N, H, W, 3) for imshow
    elif arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    elif arr.ndim != 3:
        raise ValueError(f"images must have shape (N, 1, H, W), (N, 3, H, W) or (N, H, W), got {arr.shape}")
    n = len(arr)
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    if ax is not None:
        raise ValueError("show_images draws its own grid; pass ax=None")
    fig, axes = plt.subplots(nrow, ncol, figsize=(scale * ncol, scale * nrow * (1.25 if titles is not None else 1)))
    axes = np.atleast_1d(axes).reshape(-1)
    for i, a in enumerate(axes):
        a.axis("off")
        if i < n:
            a.imshow(arr[i], cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
            if titles is not None:
                a.set_title(str(titles[i]), fontsize=8)
    fig.tight_layout(pad=0.2)
    return fig


def scatter_2d(points, ax=None, centers=None, title: str | None = None, lim: float | None = None, **kwargs):
    """Scatter 2-D samples ``(N, 2)``; optional mode ``centers`` drawn as crosses."""
    p = _to_numpy(points)
    ax = ax or plt.subplots(figsize=(4, 4))[1]
    ax.scatter(p[:, 0], p[:, 1], s=kwargs.pop("s", 2), alpha=kwargs.pop("alpha", 0.5), **kwargs)
    if centers is not None:
        c = _to_numpy(centers)
        ax.scatter(c[:, 0], c[:, 1], marker="x", color=PALETTE[3], s=30, linewidths=1)
    ax.set_aspect("equal")
    if lim is not None:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    if title:
        ax.set_title(title)
    return ax


def draw_transformer(ax=None, n_encoder: str = "N", n_decoder: str = "N"):
    """Draw the encoder-decoder Transformer as the course builds it (:mod:`aigc_course.seq2seq`):
    pre-LayerNorm blocks, the encoder's memory feeding every decoder block's cross-attention."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 7.5))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 11)
    ax.axis("off")

    def box(x, y, w, h, text, colour, fontsize=9):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05,rounding_size=0.15",
                                    fc=colour, ec="0.25", lw=1))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize)

    def arrow(x0, y0, x1, y1, **kw):
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=12, lw=1.2,
                                     color=kw.pop("color", "0.2"), **kw))

    # the encoder (left) and the decoder (right): a frame around the repeated block
    ax.add_patch(FancyBboxPatch((0.4, 3.0), 3.6, 3.9, boxstyle="round,pad=0.1", fc="0.96", ec="0.5", ls="--"))
    ax.text(0.2, 4.9, f"{n_encoder}×", ha="right", va="center", fontsize=11)
    ax.add_patch(FancyBboxPatch((5.6, 3.0), 3.6, 5.4, boxstyle="round,pad=0.1", fc="0.96", ec="0.5", ls="--"))
    ax.text(9.45, 5.7, f"×{n_decoder}", ha="left", va="center", fontsize=11)

    box(0.7, 0.4, 3.0, 0.7, "source tokens\n(digits, image patches)", "#e8e8e8", 8)
    box(0.7, 1.7, 3.0, 0.8, "token / patch embedding\n+ position embedding", "#f4d8a8", 8)
    box(0.7, 3.3, 3.0, 1.3, "LayerNorm\nself-attention (all pairs,\npadding masked)", "#f8c9a0", 8)
    box(0.7, 5.1, 3.0, 1.3, "LayerNorm\nMLP (4C, GELU)", "#c9e4f8", 8)
    box(0.7, 7.4, 3.0, 0.7, "LayerNorm → memory (B, S, C)", "#d8d8f0", 8)

    box(5.9, 0.4, 3.0, 0.7, "target so far\n<bos> y₁ … yₜ₋₁", "#e8e8e8", 8)
    box(5.9, 1.7, 3.0, 0.8, "token embedding\n+ position embedding", "#f4d8a8", 8)
    box(5.9, 3.3, 3.0, 1.2, "LayerNorm\nmasked (causal)\nself-attention", "#f8c9a0", 8)
    box(5.9, 4.9, 3.0, 1.2, "LayerNorm\ncross-attention\nQ: target, K, V: memory", "#b9e3c6", 8)
    box(5.9, 6.6, 3.0, 1.3, "LayerNorm\nMLP (4C, GELU)", "#c9e4f8", 8)
    box(5.9, 8.8, 3.0, 0.6, "LayerNorm, linear (tied)", "#d8d8f0", 8)
    box(5.9, 9.9, 3.0, 0.7, "softmax: P(y_t | y_<t, x)", "#e8e8e8", 8)

    for x in (2.2, 7.4):
        arrow(x, 1.1, x, 1.7)
        arrow(x, 2.5, x, 3.3)
    arrow(2.2, 4.6, 2.2, 5.1)
    arrow(2.2, 6.4, 2.2, 7.4)
    arrow(7.4, 4.5, 7.4, 4.9)
    arrow(7.4, 6.1, 7.4, 6.6)
    arrow(7.4, 7.9, 7.4, 8.8)
    arrow(7.4, 9.4, 7.4, 9.9)
    # the memory goes to every decoder block's cross-attention
    arrow(3.7, 7.75, 5.9, 5.5, color="#2a8a4a", connectionstyle="arc3,rad=-0.25")
    ax.text(4.85, 7.05, "memory\n(keys, values)", ha="center", fontsize=8, color="#2a8a4a")
    ax.text(2.2, 10.4, "Encoder", ha="center", fontsize=12, weight="bold")
    ax.text(7.4, 10.95, "Decoder", ha="center", fontsize=12, weight="bold")
    ax.text(2.2, 9.3, "every sub-layer is residual:\nx + f(LayerNorm(x))", ha="center", fontsize=8, color="0.35")
    return ax


class FrameViewer:
    """Precomputed frames behind a labelled slider and a play button, as one self-contained block
    of HTML and JavaScript: it works in the static book, with no kernel and no network.

    Made by :func:`frame_viewer`; Jupyter and the book show it through ``_repr_html_``.
    """

    _count = 0

    def __init__(self, pngs: list[bytes], labels: list[str], description: str, alt: str,
                 captions: list[str] | None, start: int, interval_ms: int) -> None:
        import base64
        import hashlib

        self.frames = [base64.b64encode(png).decode("ascii") for png in pngs]
        self.labels = [str(label) for label in labels]
        self.description, self.alt = description, alt
        self.captions = captions
        self.start, self.interval_ms = start, interval_ms
        FrameViewer._count += 1
        digest = hashlib.sha256("".join(self.frames).encode()).hexdigest()[:10]
        self.id = f"aigc-frames-{digest}-{FrameViewer._count}"

    def _repr_html_(self) -> str:
        import html
        import json

        e = html.escape
        i = self.start
        data = {"frames": self.frames, "labels": self.labels, "alts": [f"{self.alt} ({label})" for label in self.labels],
                "captions": self.captions}
        payload = json.dumps(data).replace("</", "<\\/")  # cannot close the script element early
        caption = (f'<pre class="aigc-frame-caption" style="white-space:pre-wrap;margin:0.3em 0">'
                   f"{e(self.captions[i])}</pre>" if self.captions else "")
        return f"""<div class="aigc-frame-viewer" id="{self.id}" data-interval="{self.interval_ms}">
<img class="aigc-frame" src="data:image/png;base64,{self.frames[i]}" alt="{e(data['alts'][i])}" style="max-width:100%;height:auto">
{caption}<div class="aigc-frame-controls" style="display:flex;align-items:center;gap:0.6em;flex-wrap:wrap">
<button type="button" class="aigc-frame-play" aria-label="Play: step through {e(self.description)}">&#9654;</button>
<label for="{self.id}-slider">{e(self.description)}</label>
<input type="range" class="aigc-frame-slider" id="{self.id}-slider" min="0" max="{len(self.frames) - 1}" step="1" value="{i}" aria-valuetext="{e(self.labels[i])}">
<output class="aigc-frame-label" for="{self.id}-slider" aria-live="polite">{e(self.labels[i])}</output>
</div>
<script type="application/json" class="aigc-frame-data">{payload}</script>
<script>
(function () {{
  var root = document.getElementById("{self.id}");
  if (!root || root.dataset.ready) return;
  root.dataset.ready = "1";
  var data = JSON.parse(root.querySelector(".aigc-frame-data").textContent);
  var img = root.querySelector(".aigc-frame"), slider = root.querySelector(".aigc-frame-slider");
  var out = root.querySelector(".aigc-frame-label"), play = root.querySelector(".aigc-frame-play");
  var caption = root.querySelector(".aigc-frame-caption"), timer = null;
  function show(i) {{
    img.src = "data:image/png;base64," + data.frames[i];
    img.alt = data.alts[i];
    out.textContent = data.labels[i];
    slider.value = i;
    slider.setAttribute("aria-valuetext", data.labels[i]);
    if (caption) caption.textContent = data.captions[i];
  }}
  function stop() {{
    clearInterval(timer);
    timer = null;
    play.innerHTML = "&#9654;";
    play.setAttribute("aria-label", "Play: step through {e(self.description)}");
  }}
  slider.addEventListener("input", function () {{ stop(); show(Number(slider.value)); }});
  play.addEventListener("click", function () {{
    if (timer) {{ stop(); return; }}
    play.innerHTML = "&#10074;&#10074;";
    play.setAttribute("aria-label", "Pause");
    timer = setInterval(function () {{ show((Number(slider.value) + 1) % data.frames.length); }},
                        Number(root.dataset.interval));
  }});
}})();
</script>
</div>"""


def frame_viewer(frames, labels, *, description: str, alt: str, captions=None, start: int = 0,
                 interval_ms: int = 600) -> FrameViewer:
    """A static stand-in for an interactive widget: ``frames`` (matplotlib figures, closed once
    drawn, or PNG bytes) shown one at a time, picked by a slider named ``description`` or played
    in order. ``labels`` name each frame (shown beside the slider), ``alt`` describes the figure
    for screen readers (each frame's alt adds its label), ``captions`` are optional text under
    the image. Everything is embedded in the HTML, so the page needs no kernel and no network.
    """
    import io

    frames = list(frames)
    if not frames:
        raise ValueError("frames must hold at least one figure or PNG image, got none")
    labels = [str(label) for label in labels]
    if len(labels) != len(frames):
        raise ValueError(f"labels must name every frame: got {len(labels)} labels for {len(frames)} frames")
    for name, value in (("description", description), ("alt", alt)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} must be a non-empty string (the slider's label / the image's alt text), got {value!r}")
    if captions is not None:
        captions = [str(c) for c in captions]
        if len(captions) != len(frames):
            raise ValueError(f"captions must have one entry per frame: got {len(captions)} for {len(frames)} frames")
    if not 0 <= start < len(frames):
        raise ValueError(f"start must index a frame (0 to {len(frames) - 1}), got {start}")
    if interval_ms <= 0:
        raise ValueError(f"interval_ms must be positive, got {interval_ms}")
    pngs = []
    for k, frame in enumerate(frames):
        if isinstance(frame, bytes | bytearray):
            if not bytes(frame).startswith(b"\x89PNG"):
                raise ValueError(f"frames[{k}] is bytes but not a PNG image")
            pngs.append(bytes(frame))
        elif hasattr(frame, "savefig"):
            buffer = io.BytesIO()
            frame.savefig(buffer, format="png", dpi=frame.dpi, bbox_inches="tight")  # screen resolution
            plt.close(frame)
            pngs.append(buffer.getvalue())
        else:
            raise ValueError(f"frames[{k}] must be a matplotlib figure or PNG bytes, got {type(frame).__name__}")
    return FrameViewer(pngs, labels, description.strip(), alt.strip(), captions, start, interval_ms)


def video_frame_pngs(clips, *, scale: int = 8, gap: int = 2) -> list[bytes]:
    """Clips ``(N, F, 3, S, S)`` in ``[0, 1]`` -> ``F`` PNG images, frame ``f`` of every clip in a row.

    Each pixel becomes a ``scale x scale`` block (no smoothing: the pixels stay visible), with
    ``gap`` grey pixels between clips. Feed the result to :func:`frame_viewer` to play the clips.
    """
    import io

    clips = _to_numpy(clips)
    if clips.ndim != 5 or clips.shape[2] != 3:
        raise ValueError(f"clips must have shape (N, F, 3, S, S), got {clips.shape}")
    n, f, _, s, _ = clips.shape
    pixels = (np.clip(clips, 0, 1) * 255).round().astype(np.uint8).transpose(1, 0, 3, 4, 2)  # (F, N, S, S, 3)
    pixels = pixels.repeat(scale, axis=2).repeat(scale, axis=3)
    side = s * scale
    out = []
    for frame in pixels:
        canvas = np.full((side, n * side + (n - 1) * gap, 3), 128, dtype=np.uint8)
        for i, clip in enumerate(frame):
            canvas[:, i * (side + gap) : i * (side + gap) + side] = clip
        buffer = io.BytesIO()
        plt.imsave(buffer, canvas, format="png")  # matplotlib's writer: no second imaging library
        out.append(buffer.getvalue())
    return out


def show_clip_strips(clips, titles=None, *, axes=None):
    """Clips ``(N, F, 3, S, S)`` as ``N`` rows of frames (time runs left to right); returns the axes."""
    clips = _to_numpy(clips)
    n, f = clips.shape[:2]
    if axes is None:
        _, axes = plt.subplots(n, 1, figsize=(1.1 * f, 1.25 * n), squeeze=False)
        axes = axes[:, 0]
    for i, ax in enumerate(axes):
        strip = np.concatenate([np.pad(frame.transpose(1, 2, 0), ((0, 0), (0, 1), (0, 0)), constant_values=0.5)
                                for frame in clips[i]], axis=1)[:, :-1]
        ax.imshow(np.clip(strip, 0, 1), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize=9, loc="left")
    return axes
