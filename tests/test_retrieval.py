"""Retrieval (chapter 6.1): cosine similarity against its formula and torch's, top-k order and
ties, TF-IDF against scikit-learn's TfidfVectorizer, the language-model encoder's padding, and
the index end to end."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from aigc_course.gpt import GPT, GPTConfig
from aigc_course.retrieval import (
    LanguageModelEncoder,
    TfidfEncoder,
    VectorIndex,
    cosine_similarity,
    top_k,
    words,
)
from aigc_course.tokenizers import CharTokenizer


def test_cosine_similarity_matches_torch_and_handles_zero_vectors():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(3, 5, generator=g), torch.randn(4, 5, generator=g)
    expected = F.cosine_similarity(q[:, None, :], k[None, :, :], dim=-1)
    torch.testing.assert_close(cosine_similarity(q, k), expected)
    k[1] = 0
    assert cosine_similarity(q, k)[:, 1].eq(0).all()


def test_cosine_similarity_rejects_mismatched_widths():
    with pytest.raises(ValueError, match="width"):
        cosine_similarity(torch.randn(2, 3), torch.randn(2, 4))
    with pytest.raises(ValueError, match="queries"):
        cosine_similarity(torch.randn(3), torch.randn(2, 3))


def test_top_k_is_sorted_and_breaks_ties_by_index():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.9, 0.5], [1.0, 1.0, 1.0, 1.0, 1.0]])
    values, order = top_k(scores, 3)
    assert order.tolist() == [[1, 3, 2], [0, 1, 2]]
    torch.testing.assert_close(values, torch.tensor([[0.9, 0.9, 0.5], [1.0, 1.0, 1.0]]))
    values, order = top_k(scores, 5)
    assert order[0].tolist() == [1, 3, 2, 4, 0]


@pytest.mark.parametrize(("k", "message"), [(6, "larger than the index, which holds 5"), (0, "positive int"),
                                            (True, "positive int"), (2.0, "positive int")])
def test_top_k_rejects_bad_k(k, message):
    with pytest.raises(ValueError, match=message):
        top_k(torch.rand(2, 5), k)


def test_tfidf_matches_scikit_learn():
    sklearn_text = pytest.importorskip("sklearn.feature_extraction.text")
    texts = ["how do I reset the kettle?", "reset it to factory settings", "what is the price of the kettle"]
    ours = TfidfEncoder().fit(texts).encode(texts + ["an unknown sentence about the kettle"])
    vec = sklearn_text.TfidfVectorizer(token_pattern=r"[a-z0-9]+", norm=None).fit(texts)
    theirs = torch.tensor(vec.transform(texts + ["an unknown sentence about the kettle"]).toarray(), dtype=torch.float32)
    # same vocabulary order (sorted), same smoothed idf
    assert list(vec.get_feature_names_out()) == sorted(TfidfEncoder().fit(texts).vocabulary)
    torch.testing.assert_close(ours, theirs)


def test_tfidf_needs_fit_and_strings():
    with pytest.raises(ValueError, match="fit"):
        TfidfEncoder().encode(["a"])
    with pytest.raises(ValueError, match="texts"):
        TfidfEncoder().fit("one string")
    assert words("Reset it, NOW! 10 s") == ["reset", "it", "now", "10", "s"]


def test_language_model_encoder_ignores_padding_and_restores_mode():
    tok = CharTokenizer.train("abcdefgh ")
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=8))
    model.train()
    enc = LanguageModelEncoder(model, tok, batch_size=2)
    texts = ["abc", "a bag had a head", "de"]  # batched together with padding
    together = enc.encode(texts)
    alone = torch.cat([enc.encode([t]) for t in texts])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
    assert together.shape == (3, 8) and model.training
    with pytest.raises(ValueError, match="empty"):
        enc.encode([""])


def test_index_returns_payloads_best_first():
    texts = ["how do I reset the kettle", "what does it cost", "how long is the warranty"]
    index = VectorIndex(TfidfEncoder().fit(texts)).add(texts, ["reset", "price", "warranty"])
    hits = index.search(["reset my kettle please", "warranty length?"], k=2)
    assert [h[0][2] for h in hits] == ["reset", "warranty"]
    assert hits[0][0][0] >= hits[0][1][0]
    with pytest.raises(ValueError, match="k=4 is larger than the index, which holds 3"):
        index.search(["x"], k=4)
    with pytest.raises(ValueError, match="payloads"):
        index.add(["one"], ["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        VectorIndex(TfidfEncoder()).search(["x"])
