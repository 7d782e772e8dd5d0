"""The map of AIGC (Chapter 1.2): modalities, applications, and where this book builds each.

Plain data plus one drawing function, so the taxonomy figure is drawn by code and the
links from applications to chapters can be checked against the book's table of contents.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

from aigc_course.plotting import PALETTE, can_draw_chinese


@dataclass(frozen=True)
class Modality:
    name: str
    chinese: str
    examples: tuple[str, ...]
    techniques: tuple[str, ...]
    # A typical raw tensor for 10 seconds of content, to compare sizes.
    shape_10s: tuple[int, ...]
    shape_note: str


MODALITIES: tuple[Modality, ...] = (
    Modality("Text", "文本生成", ("articles", "stories", "code"),
             ("autoregressive Transformer (GPT)",),
             (40,), "about 40 tokens (a sentence read aloud in 10 s)"),
    Modality("Speech", "语音生成", ("text-to-speech", "voice assistants"),
             ("autoregressive waveform models", "diffusion vocoders"),
             (160_000,), "16 kHz mono audio samples"),
    Modality("Image", "图像生成", ("illustration", "product photos"),
             ("GAN", "VAE", "diffusion"),
             (3, 512, 512), "one 512x512 RGB image"),
    Modality("Video", "视频生成", ("short clips", "animation"),
             ("diffusion over frames",),
             (240, 3, 512, 512), "24 frames/s of 512x512 RGB"),
)


# Where this book builds each technique (book document names, as in _toc.yml).
TECHNIQUE_CHAPTERS: dict[str, str] = {
    "n-gram language model": "chapters/01_background/1_1_1_ngram_language_model",
    "neural language model": "chapters/01_background/1_1_2_neural_language_model",
    "autoregressive Transformer (GPT)": "chapters/03_1_transformer/index",
    "GAN": "chapters/03_2_gan/index",
    "diffusion": "chapters/03_3_diffusion/index",
    "diffusion over frames": "chapters/02_3_4_text_to_video/index",
}


@dataclass(frozen=True)
class Application:
    name: str
    chinese: str
    examples: str
    modalities: tuple[str, ...]


APPLICATIONS: tuple[Application, ...] = (
    Application("Marketing", "营销创作", "ad copy, marketing videos", ("Text", "Image", "Video")),
    Application("Education", "教育培训", "lesson plans, generated exercises", ("Text",)),
    Application("News", "新闻报道", "automated news writing", ("Text",)),
    Application("Entertainment", "娱乐创作", "stories, film scripts", ("Text", "Image", "Video")),
    Application("Customer service", "客户服务", "dialogue systems", ("Text", "Speech")),
)


def modality(name: str) -> Modality:
    for m in MODALITIES:
        if m.name == name:
            return m
    raise ValueError(f"unknown modality {name!r}; expected one of {[m.name for m in MODALITIES]}")


def numel(shape: tuple[int, ...]) -> int:
    out = 1
    for s in shape:
        out *= s
    return out


def draw_taxonomy(ax=None):
    """Draw AIGC -> modalities -> techniques -> applications as a box diagram. Returns the axes."""
    ax = ax or plt.subplots(figsize=(11, 5.2))[1]
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 5.2)
    ax.axis("off")

    def box(x, y, text, color, width=2.2, height=0.62, size=9):
        ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                    boxstyle="round,pad=0.03", fc=color, ec="black", lw=0.6, alpha=0.9))
        ax.text(x, y, text, ha="center", va="center", fontsize=size)

    def arrow(x0, y0, x1, y1):
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops={"arrowstyle": "->", "lw": 0.6, "color": "gray"})

    # The article's Chinese names go under the English ones where a Chinese font is in the style
    # (plotting.use_course_style adds one when installed); matplotlib's own font has no CJK glyphs.
    chinese = can_draw_chinese()
    box(0.95, 2.6, "AIGC\n(AI-generated\ncontent)", PALETTE[5], width=1.6, height=1.0, size=10)
    ys = [4.4, 3.2, 2.0, 0.8]
    app_y = {a.name: 4.6 - 0.95 * i for i, a in enumerate(APPLICATIONS)}
    for m, y in zip(MODALITIES, ys, strict=True):
        arrow(1.75, 2.6, 2.55, y)
        box(3.6, y, f"{m.name} generation" + (f"\n{m.chinese}" if chinese else ""), PALETTE[1], width=2.0)
        box(6.35, y, "\n".join(m.techniques), PALETTE[2], width=2.9, height=0.8, size=8)
        arrow(4.6, y, 4.9, y)
        for app in APPLICATIONS:
            if m.name in app.modalities:
                arrow(7.8, y, 8.75, app_y[app.name])
    for app in APPLICATIONS:
        name = f"{app.name} · {app.chinese}" if chinese else app.name
        box(9.8, app_y[app.name], f"{name}\n{app.examples}", PALETTE[0], width=2.3, height=0.7, size=7.5)
        ax.texts[-1].set_color("white")
    for x, label in [(3.6, "modality"), (6.35, "technique"), (9.8, "application")]:
        ax.text(x, 5.1, label, ha="center", fontsize=10, style="italic")
    return ax
