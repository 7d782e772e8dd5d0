"""The book's figure helpers."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from aigc_course.plotting import draw_transformer, show_images  # noqa: E402


@pytest.mark.parametrize("shape", [(4, 1, 8, 8), (4, 8, 8), (4, 3, 32, 32)])
def test_show_images_draws_grey_and_colour_grids(shape):
    fig = show_images(torch.rand(shape), nrow=2, titles=list("abcd"))
    shown = [im.get_array() for ax in fig.axes for im in ax.get_images()]
    assert len(shown) == 4
    assert shown[0].shape == ((32, 32, 3) if shape[1] == 3 else (8, 8))
    plt.close(fig)


def test_show_images_rejects_other_channel_counts():
    with pytest.raises(ValueError, match=r"images must have shape \(N, 1, H, W\), \(N, 3, H, W\)"):
        show_images(torch.rand(2, 2, 8, 8))


def test_draw_transformer_draws_both_stacks_and_the_memory_arrow():
    fig, ax = plt.subplots()
    assert draw_transformer(ax, n_encoder="2", n_decoder="2") is ax
    texts = " ".join(t.get_text() for t in ax.texts)
    for word in ("Encoder", "Decoder", "cross-attention", "memory", "2×", "×2"):
        assert word in texts
    assert len(ax.patches) >= 15  # boxes, frames and arrows
    plt.close(fig)


def test_frame_viewer_embeds_every_frame_behind_a_labelled_slider():
    from aigc_course.plotting import frame_viewer

    figures = []
    for k in range(3):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, k])
        figures.append(fig)
    viewer = frame_viewer(figures, [f"k = {k}" for k in range(3)], description="k", alt="A line of slope k",
                          captions=["a", "b", "</script><b>c"], start=1)
    assert plt.get_fignums() == []  # every figure drawn once and closed
    html = viewer._repr_html_()
    assert len(viewer.frames) == 3 and len(set(viewer.frames)) == 3
    assert html.count("data:image/png;base64,") == 2  # the start frame in the <img>, the rest in the data
    assert f'<label for="{viewer.id}-slider">k</label>' in html
    assert 'type="range"' in html and 'max="2"' in html and 'value="1"' in html
    assert 'alt="A line of slope k (k = 1)"' in html
    assert "</script><b>c" not in html  # a caption cannot end the script or inject markup
    png = viewer.frames[0]
    assert frame_viewer([__import__("base64").b64decode(png)], ["only"], description="x", alt="y").frames == [png]


@pytest.mark.parametrize("kwargs, message", [
    (dict(frames=[], labels=[]), "frames must hold at least one"),
    (dict(labels=["a", "b"]), "labels must name every frame"),
    (dict(description=" "), "description must be a non-empty string"),
    (dict(alt=""), "alt must be a non-empty string"),
    (dict(captions=["a", "b"]), "captions must have one entry per frame"),
    (dict(start=1), "start must index a frame"),
    (dict(frames=[b"GIF89a"]), r"frames\[0\] is bytes but not a PNG"),
    (dict(frames=["x.png"]), r"frames\[0\] must be a matplotlib figure or PNG bytes"),
])
def test_frame_viewer_rejects_bad_input(kwargs, message):
    from aigc_course.plotting import frame_viewer

    args = dict(frames=[b"\x89PNG\r\n"], labels=["a"], description="t", alt="a digit") | kwargs
    frames, labels = args.pop("frames"), args.pop("labels")
    with pytest.raises(ValueError, match=message):
        frame_viewer(frames, labels, **args)


def test_course_style_falls_back_to_an_installed_chinese_font(monkeypatch):
    from aigc_course import plotting

    with plt.rc_context():
        monkeypatch.setattr(plotting, "cjk_font", lambda: "WenQuanYi Zen Hei")
        plotting.use_course_style()
        assert list(plt.rcParams["font.family"]) == [plt.rcParams["font.sans-serif"][0], "WenQuanYi Zen Hei"]
        plotting.use_course_style()  # applying it twice adds the font once
        assert list(plt.rcParams["font.family"]).count("WenQuanYi Zen Hei") == 1
        assert plotting.can_draw_chinese()
    with plt.rc_context():
        monkeypatch.setattr(plotting, "cjk_font", lambda: None)
        plotting.use_course_style()
        assert not plotting.can_draw_chinese()
