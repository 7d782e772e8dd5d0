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
