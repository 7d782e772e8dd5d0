"""Verbatim-copy measures (book 8.2): hashed n-gram sets against brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aigc_course.metrics.memorisation import NGramIndex, _mix, _WindowHasher


def brute_longest(text, corpus):
    best = 0
    for i in range(len(text)):
        for j in range(len(corpus)):
            k = 0
            while i + k < len(text) and j + k < len(corpus) and text[i + k] == corpus[j + k]:
                k += 1
            best = max(best, k)
    return best


def test_window_hashes_equal_the_direct_polynomial():
    tokens = np.random.default_rng(0).integers(0, 50, 40)
    hasher, mixed = _WindowHasher(tokens), _mix(tokens)
    base = 0x100000001B3
    for n in [1, 2, 3, 5, 8, 13, 40]:
        direct = []
        for i in range(len(tokens) - n + 1):
            h = 0
            for x in mixed[i: i + n].tolist():
                h = (h * base + x) % (1 << 64)
            direct.append(h)
        assert hasher.windows(n).tolist() == direct
    assert len(hasher.windows(41)) == 0


def test_overlap_and_longest_match_equal_brute_force():
    rng = np.random.default_rng(1)
    corpus = rng.integers(0, 6, 300)
    index = NGramIndex(torch.from_numpy(corpus))
    grams = {n: {tuple(corpus[i: i + n]) for i in range(len(corpus) - n + 1)} for n in (1, 3, 6)}
    for trial in range(12):
        text = rng.integers(0, 6, 40)
        if trial % 3 == 0:  # paste a long piece of the corpus into it
            text[5:30] = corpus[100:125]
        for n, seen in grams.items():
            windows = [tuple(text[i: i + n]) for i in range(len(text) - n + 1)]
            assert index.occurs(text, n).tolist() == [w in seen for w in windows]
            assert index.ngram_overlap(text, n) == pytest.approx(np.mean([w in seen for w in windows]))
        match = index.longest_match(text.tolist())
        assert match.length == brute_longest(text.tolist(), corpus.tolist())
        assert np.array_equal(text[match.start: match.start + match.length],
                              corpus[match.corpus_start: match.corpus_start + match.length])
        if trial % 3 == 0:
            assert match.length >= 25


def test_edge_cases():
    index = NGramIndex([1, 2, 3])
    assert index.longest_match([7, 8]).length == 0
    assert index.longest_match([1, 2, 3]).length == 3
    assert np.isnan(index.ngram_overlap([1, 2], 3))
    assert len(index) == 3


@pytest.mark.parametrize("call,name", [
    (lambda: NGramIndex([]), "corpus_ids"),
    (lambda: NGramIndex([[1, 2]]), "corpus_ids"),
    (lambda: NGramIndex([1.5, 2.0]), "corpus_ids"),
    (lambda: NGramIndex([1, 2]).occurs([1, 2], 0), "n"),
    (lambda: NGramIndex([1, 2]).ngram_overlap([-1, 2], 1), "ids"),
    (lambda: NGramIndex([1, 2]).longest_match("ab"), "ids"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
