"""Retrieval: turn texts into vectors and find the nearest ones (chapter 6.1, 智能客服).

A retrieval system answers "which stored texts are most like this query?" in two steps:

1. an **encoder** maps every text to a vector, ``(N, D)`` for ``N`` texts: here either
   :class:`TfidfEncoder` (bag of words, weighted by rarity -- the classic baseline) or
   :class:`LanguageModelEncoder` (the mean of a course GPT's hidden states over the text's
   tokens);
2. a **nearest-neighbour search** scores the query against every stored vector by cosine
   similarity and keeps the ``k`` best: :func:`cosine_similarity` and :func:`top_k`.

:class:`VectorIndex` joins the two. Ties in the scores go to the lower index (the entry added
first), so a search is repeatable.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import torch

WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lower-cased words and numbers of ``text``: ``"Reset it, now!" -> ["reset", "it", "now"]``."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    return WORD.findall(text.lower())


def _check_texts(texts, name: str = "texts") -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)) or not texts:
        raise ValueError(f"{name} must be a non-empty list of str, got {type(texts).__name__}")
    bad = [t for t in texts if not isinstance(t, str)]
    if bad:
        raise ValueError(f"{name} must hold only str, got {type(bad[0]).__name__}")
    return list(texts)


def _check_matrix(x, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or not x.is_floating_point():
        got = f"shape {tuple(x.shape)} dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a 2-D float tensor (N, D), got {got}")
    return x


def cosine_similarity(queries: torch.Tensor, keys: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``(Q, D), (N, D) -> (Q, N)``: ``cos(q, k) = q·k / (|q| |k|)``.

    A zero vector (a text with no known word) has similarity 0 to everything.
    """
    queries, keys = _check_matrix(queries, "queries"), _check_matrix(keys, "keys")
    if queries.shape[1] != keys.shape[1]:
        raise ValueError(f"queries and keys must have the same width D, got {queries.shape[1]} and {keys.shape[1]}")
    q = queries / queries.norm(dim=1, keepdim=True).clamp_min(eps)
    k = keys / keys.norm(dim=1, keepdim=True).clamp_min(eps)
    return q @ k.T


def top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best scores of each row and their column indices, best first: ``(Q, k), (Q, k)``.

    Equal scores are ordered by index (the lower index first). ``k`` larger than the number of
    columns is an error: a search cannot return more entries than the index holds.
    """
    scores = _check_matrix(scores, "scores")
    n = scores.shape[1]
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if k > n:
        raise ValueError(f"k={k} is larger than the index, which holds {n} entries")
    # a stable sort keeps tied scores in index order; torch.topk does not promise that
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    return scores.gather(1, order), order


class TfidfEncoder:
    """Bag-of-words vectors weighted by inverse document frequency (the retrieval baseline).

    ``fit(texts)`` learns the vocabulary and ``idf(w) = log((1 + N) / (1 + df(w))) + 1`` from
    ``N`` texts (scikit-learn's smoothed form); ``encode(texts) -> (len(texts), V)`` gives each
    text its word counts times idf. Words never seen in ``fit`` are ignored.
    """

    def __init__(self):
        self.vocabulary: dict[str, int] = {}
        self.idf = torch.zeros(0)

    def fit(self, texts: list[str]) -> TfidfEncoder:
        texts = _check_texts(texts)
        df = Counter(w for t in texts for w in set(words(t)))
        self.vocabulary = {w: i for i, w in enumerate(sorted(df))}
        n = len(texts)
        self.idf = torch.tensor([math.log((1 + n) / (1 + df[w])) + 1 for w in sorted(df)])
        return self

    def encode(self, texts: list[str]) -> torch.Tensor:
        texts = _check_texts(texts)
        if not self.vocabulary:
            raise ValueError("this TfidfEncoder has no vocabulary: call fit(texts) first")
        out = torch.zeros(len(texts), len(self.vocabulary))
        for row, text in enumerate(texts):
            for w, c in Counter(words(text)).items():
                if w in self.vocabulary:
                    out[row, self.vocabulary[w]] = c
        return out * self.idf


class LanguageModelEncoder:
    """Sentence vectors from a course language model: the mean of its hidden states.

    ``model`` is a :class:`~aigc_course.gpt.GPT` (or any model with ``_body(idx) -> (B, T, C)``)
    and ``tokenizer`` its tokenizer; ``encode(texts) -> (len(texts), C)`` averages the final
    hidden states over each text's tokens (padding excluded). A causal model's hidden state
    at a token has read only the tokens before it, so the mean mixes every prefix of the text.
    ``prefix`` is put before every text (e.g. the chat template's user marker).
    """

    def __init__(self, model, tokenizer, prefix: str = "", batch_size: int = 64):
        self.model, self.tokenizer, self.prefix, self.batch_size = model, tokenizer, prefix, batch_size

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        texts = _check_texts(texts)
        device = next(self.model.parameters()).device
        block = self.model.config.block_size
        rows = [self.tokenizer.encode(self.prefix + t)[:block] for t in texts]
        if any(not r for r in rows):
            raise ValueError("texts must not be empty strings: an empty text has no tokens to average")
        out = []
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(rows), self.batch_size):
                chunk = rows[start:start + self.batch_size]
                width = max(len(r) for r in chunk)
                ids = torch.zeros(len(chunk), width, dtype=torch.long)
                mask = torch.zeros(len(chunk), width)
                for b, r in enumerate(chunk):
                    ids[b, :len(r)] = torch.tensor(r)
                    mask[b, :len(r)] = 1.0
                hidden = self.model._body(ids.to(device))  # (B, T, C); right padding is never read
                mask = mask.to(device)[:, :, None]
                out.append(((hidden * mask).sum(1) / mask.sum(1)).float().cpu())
        finally:
            self.model.train(was_training)
        return torch.cat(out)


class VectorIndex:
    """Texts, their payloads and their vectors; ``search(queries, k)`` returns the nearest.

    ``encoder`` has ``encode(texts) -> (N, D)``. ``add(texts, payloads)`` stores entries;
    :meth:`search` returns, per query, a list of ``(score, text, payload)`` best first.
    """

    def __init__(self, encoder):
        if not hasattr(encoder, "encode"):
            raise ValueError(f"encoder must have an encode(texts) method, got {type(encoder).__name__}")
        self.encoder = encoder
        self.texts: list[str] = []
        self.payloads: list = []
        self.vectors: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def add(self, texts: list[str], payloads: list | None = None) -> VectorIndex:
        texts = _check_texts(texts)
        payloads = list(texts) if payloads is None else list(payloads)
        if len(payloads) != len(texts):
            raise ValueError(f"payloads must have one entry per text: got {len(payloads)} for {len(texts)} texts")
        vectors = self.encoder.encode(texts)
        self.vectors = vectors if self.vectors is None else torch.cat([self.vectors, vectors])
        self.texts += texts
        self.payloads += payloads
        return self

    def search(self, queries: list[str], k: int = 1) -> list[list[tuple[float, str, object]]]:
        queries = _check_texts(queries, "queries")
        if self.vectors is None:
            raise ValueError("the index is empty: add(texts) before searching")
        scores, order = top_k(cosine_similarity(self.encoder.encode(queries), self.vectors), k)
        return [[(float(s), self.texts[i], self.payloads[i]) for s, i in zip(srow.tolist(), irow.tolist(), strict=True)]
                for srow, irow in zip(scores, order, strict=True)]
