"""Model cards: one per shipped checkpoint, every fact read from the registry, the config and LICENSE-DATA.md."""

from __future__ import annotations

import pytest

from aigc_course import pretrained
from aigc_course.interop import data_sources, model_card, write_model_card
from aigc_course.interop.model_card import DATA_LICENCES


def test_licence_table_is_read():
    rows = data_sources()
    assert len(rows) >= 5 and all(set(r) == {"data", "source", "licence", "used_by"} for r in rows)
    assert any("PSF" in r["licence"] and "`code-gpt`" in r["used_by"] for r in rows)


@pytest.mark.parametrize("name", pretrained.available())
def test_every_checkpoint_has_a_card_with_its_facts(name):
    card = model_card(name)
    entry = pretrained.info(name)
    assert card.startswith("---\n") and f"# {name}\n" in card
    for digest in entry["sha256"].values():
        assert digest in card
    assert entry["script"] in card and entry["builder"] in card
    assert "## Training data" in card and "See LICENSE-DATA.md" not in card  # a row of the table names it
    assert "## Intended use and limits" in card


def test_code_gpt_card_records_data_licence_and_time():
    card = model_card("code-gpt")
    config = pretrained.load_files("code-gpt")[1]
    assert "PSF" in card and "python_corpus" in card
    assert f"{config['training']['train_seconds'] / 60:.1f} min" in card
    assert f"{config['metrics']['test_bits_per_char']:.4g}" in card


def test_write_and_errors(tmp_path):
    path = write_model_card("digits-ddpm", tmp_path / "digits-ddpm")
    assert path.name == "README.md" and path.read_text(encoding="utf-8") == model_card("digits-ddpm")
    with pytest.raises(ValueError, match="unknown checkpoint 'no-such-model'"):
        model_card("no-such-model")
    with pytest.raises(ValueError, match="path must be the repository's LICENSE-DATA.md"):
        data_sources(tmp_path / "missing.md")
    assert DATA_LICENCES.name == "LICENSE-DATA.md"
