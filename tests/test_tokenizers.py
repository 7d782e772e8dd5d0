import json
import random

import pytest

from aigc_course.tokenizers import ByteBPETokenizer, CharTokenizer, tokenizer_from_dict

TRAIN = (
    "def add(a, b):\n    return a + b\n\n"
    "def add_all(items):\n    total = 0\n    for item in items:\n        total = add(total, item)\n    return total\n"
    "# 中文注释：返回总和。中文注释：返回总和。\n"
) * 20


def random_unicode(rng: random.Random, n: int) -> str:
    ranges = [(0x20, 0x7E), (0x0A, 0x0A), (0xA0, 0x24F), (0x4E00, 0x9FFF), (0x3040, 0x30FF), (0x1F300, 0x1FAFF), (0x10000, 0x10FFFF)]
    out = []
    for _ in range(n):
        lo, hi = rng.choice(ranges)
        cp = rng.randint(lo, hi)
        out.append(chr(cp))
    return "".join(out)


def test_char_round_trip_random_unicode(tmp_path):
    rng = random.Random(0)
    for _ in range(20):
        text = random_unicode(rng, rng.randint(1, 200))
        tok = CharTokenizer.train(text)
        assert tok.decode(tok.encode(text)) == text
    tok.save(tmp_path / "char.json")
    again = CharTokenizer.load(tmp_path / "char.json")
    assert again.chars == tok.chars and again.decode(again.encode(text)) == text


def test_char_errors():
    tok = CharTokenizer.train("abc")
    with pytest.raises(ValueError, match="'z'"):
        tok.encode("abz")
    with pytest.raises(ValueError, match="ids must be in"):
        tok.decode([0, 3])
    with pytest.raises(ValueError, match="non-empty"):
        CharTokenizer.train("")


@pytest.fixture(scope="module")
def bpe():
    return ByteBPETokenizer.train(TRAIN, vocab_size=300)


def test_bpe_learns_merges_that_compress(bpe):
    assert bpe.vocab_size == 300
    ids = bpe.encode(TRAIN)
    assert len(ids) < 0.5 * len(TRAIN.encode("utf-8"))
    assert max(ids) >= 256
    # frequent Chinese characters (3 UTF-8 bytes each) become single tokens
    whole = [bpe.vocab[i].decode("utf-8", errors="ignore") for i in range(256, 300)]
    assert {"中", "和"} <= set(whole)


def test_bpe_round_trips_unseen_random_unicode(bpe):
    rng = random.Random(1)
    for _ in range(50):
        text = random_unicode(rng, rng.randint(0, 300))
        assert bpe.decode(bpe.encode(text), errors="strict") == text
    for text in ["", " ", "\n\n\t  x", "自回归语言模型 P(y) = ∏ P(y_t | y_<t)", "🙂🙃 emoji", "a\u0301 combining"]:
        assert bpe.decode(bpe.encode(text), errors="strict") == text


def test_bpe_save_load_and_dict(tmp_path, bpe):
    bpe.save(tmp_path / "bpe.json")
    payload = json.loads((tmp_path / "bpe.json").read_text(encoding="utf-8"))
    assert payload["type"] == "byte_bpe" and len(payload["merges"]) == 44
    again = ByteBPETokenizer.load(tmp_path / "bpe.json")
    assert again.encode(TRAIN) == bpe.encode(TRAIN)
    assert isinstance(tokenizer_from_dict(bpe.to_dict()), ByteBPETokenizer)
    with pytest.raises(ValueError, match="byte_bpe"):
        CharTokenizer.load(tmp_path / "bpe.json")


def test_bpe_merges_are_applied_in_learned_order():
    tok = ByteBPETokenizer.train("aaaa " * 50, vocab_size=260)
    a = ord("a")
    assert tok.merges[0] == (a, a)
    assert tok.merges[1] == (256, 256)
    assert tok.encode("aaaa") == [257] and tok.vocab[257] == b"aaaa"
    assert tok.decode(tok.encode("aaaaa")) == "aaaaa"


def test_bpe_errors(bpe):
    with pytest.raises(ValueError, match="vocab_size"):
        ByteBPETokenizer.train("abc", vocab_size=100)
    with pytest.raises(ValueError, match="ids must be in"):
        bpe.decode([300])
    with pytest.raises(ValueError, match="str"):
        bpe.encode(b"bytes")
    with pytest.raises(ValueError, match="not yet defined"):
        ByteBPETokenizer([(256, 1)])
