import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from aigc_course import landscape  # noqa: E402
from tests.test_repository import resolve  # noqa: E402


def test_four_modalities_and_five_applications_from_the_article():
    assert [m.chinese for m in landscape.MODALITIES] == ["文本生成", "语音生成", "图像生成", "视频生成"]
    assert [a.chinese for a in landscape.APPLICATIONS] == ["营销创作", "教育培训", "新闻报道", "娱乐创作", "客户服务"]


def test_every_technique_chapter_exists():
    for technique, doc in landscape.TECHNIQUE_CHAPTERS.items():
        assert resolve(doc) is not None, f"{technique} points at missing {doc}"


def test_sizes_grow_with_modality():
    sizes = [landscape.numel(m.shape_10s) for m in landscape.MODALITIES]
    assert sizes == sorted(sizes)


def test_draw_taxonomy_draws_every_box():
    ax = landscape.draw_taxonomy()
    texts = {t.get_text().split("\n")[0] for t in ax.texts}
    assert {"Text generation", "Video generation"} <= texts
    assert len(ax.patches) == 1 + 2 * len(landscape.MODALITIES) + len(landscape.APPLICATIONS)


def test_taxonomy_adds_the_articles_chinese_names_when_the_style_has_a_chinese_font(monkeypatch):
    with plt.rc_context():
        plt.rcParams["font.family"] = ["DejaVu Sans", "WenQuanYi Zen Hei"]
        monkeypatch.setattr("aigc_course.plotting.cjk_font", lambda: "WenQuanYi Zen Hei")
        texts = [t.get_text() for t in landscape.draw_taxonomy().texts]
    assert "Text generation\n文本生成" in texts
    assert any(t.startswith("Marketing · 营销创作\n") for t in texts)
    plt.close("all")
    with plt.rc_context():
        plt.rcParams["font.family"] = ["sans-serif"]  # no Chinese font in the style: English only
        texts = [t.get_text() for t in landscape.draw_taxonomy().texts]
    assert "Text generation" in texts and not any("文本" in t for t in texts)
    plt.close("all")


def test_unknown_modality():
    with pytest.raises(ValueError, match="unknown modality 'Smell'"):
        landscape.modality("Smell")
