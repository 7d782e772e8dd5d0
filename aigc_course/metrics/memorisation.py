"""How much of a generated text is copied verbatim from the training corpus (book 8.2).

Two measures over token ids:

* **n-gram overlap** -- the share of a text's ``n``-token windows that also occur somewhere
  in the corpus. Short windows (``n = 2, 3``) are common phrases and overlap a lot in any
  text; long windows (``n >= 16``) are rarely shared by chance, so a high overlap there means
  copying.
* **longest match** -- the longest run of consecutive tokens of the text that occurs in the
  corpus (the longest common substring of text and corpus).

Both need "does this window occur in the corpus?" for millions of corpus windows. The
:class:`NGramIndex` answers it with hashed n-gram sets: every window of ``n`` tokens of the
corpus becomes one 64-bit polynomial hash, the hashes are sorted once per ``n``, and a
window is looked up by binary search (``numpy.searchsorted``). Window hashes of any length
come from those of power-of-two lengths, ``h(a + b)[i] = h(a)[i] * B**b + h(b)[i + a]``
(arithmetic modulo ``2**64``), so building the set for ``n`` costs ``O(N log n)`` vector
operations instead of ``O(N n)``. The longest match is a binary search over ``n``: if a
window of length ``n`` occurs in the corpus, so do all its sub-windows.

Hashes can collide: two different windows share a hash with probability ``2**-64`` per pair,
about ``1e-8`` for a million corpus windows against a thousand queries. The position a
longest match reports is found token by token (:meth:`NGramIndex.longest_match`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

_BASE = 0x100000001B3  # an odd multiplier (FNV-1's prime), invertible modulo 2**64
_MASK = (1 << 64) - 1


def _mix(tokens: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: spread token ids over 64 bits before hashing windows of them."""
    z = tokens.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _as_ids(ids, name: str) -> np.ndarray:
    try:
        array = np.asarray(ids.cpu() if hasattr(ids, "cpu") else ids)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a 1-D sequence of token ids") from err
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise ValueError(f"{name} must be a 1-D sequence of integer token ids, got shape {array.shape} "
                         f"dtype {array.dtype}")
    if array.size and array.min() < 0:
        raise ValueError(f"{name} must hold non-negative token ids, got {int(array.min())}")
    return array.astype(np.int64)


def _check_n(n, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be a positive int, got {n!r}")
    return int(n)


class _WindowHasher:
    """Hashes of every window of every length of one token sequence, built from power-of-two pieces."""

    def __init__(self, tokens: np.ndarray):
        self.size = len(tokens)
        self._pieces = {1: _mix(tokens)}  # length -> (size - length + 1,) hashes

    def _piece(self, length: int) -> np.ndarray:  # length is a power of two
        if length not in self._pieces:
            half = self._piece(length // 2)
            shift = np.uint64(pow(_BASE, length // 2, 1 << 64))
            self._pieces[length] = half[: len(half) - length // 2] * shift + half[length // 2:]
        return self._pieces[length]

    def windows(self, n: int) -> np.ndarray:
        """``(size - n + 1,)`` uint64: the hash of ``tokens[i : i + n]`` for every ``i``."""
        count = self.size - n + 1
        if count <= 0:
            return np.zeros(0, dtype=np.uint64)
        out, done = None, 0
        for bit in reversed(range(n.bit_length())):
            length = 1 << bit
            if not n & length:
                continue
            piece = self._piece(length)[done: done + count]
            out = piece if out is None else out * np.uint64(pow(_BASE, length, 1 << 64)) + piece
            done += length
        return out


class Match(NamedTuple):
    """A verbatim copy: ``length`` tokens of the text from ``start`` equal the corpus from ``corpus_start``."""

    length: int
    start: int
    corpus_start: int


class NGramIndex:
    """Hashed n-gram sets of a token corpus ``(N,)``, built once per window length and kept.

    ``corpus_ids``: a 1-D sequence of token ids (list, numpy array or tensor). Documents may be
    concatenated; a window across a document boundary is just one more (rarely matched) window.
    """

    def __init__(self, corpus_ids):
        self.corpus = _as_ids(corpus_ids, "corpus_ids")
        if len(self.corpus) == 0:
            raise ValueError("corpus_ids must hold at least one token")
        self._hasher = _WindowHasher(self.corpus)
        self._sorted: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.corpus)

    def _set(self, n: int) -> np.ndarray:
        if n not in self._sorted:
            self._sorted[n] = np.sort(self._hasher.windows(n))  # duplicates are harmless to searchsorted
        return self._sorted[n]

    def occurs(self, ids, n: int) -> np.ndarray:
        """``(len(ids) - n + 1,)`` bool: does the window ``ids[i : i + n]`` occur in the corpus?"""
        ids, n = _as_ids(ids, "ids"), _check_n(n)
        queries = _WindowHasher(ids).windows(n)
        table = self._set(n)
        if len(queries) == 0 or len(table) == 0:
            return np.zeros(len(queries), dtype=bool)
        where = np.minimum(np.searchsorted(table, queries), len(table) - 1)
        return table[where] == queries

    def ngram_overlap(self, ids, n: int) -> float:
        """The share of the ``n``-token windows of ``ids`` that occur in the corpus (NaN if ``ids`` is shorter)."""
        hits = self.occurs(ids, n)
        return float(hits.mean()) if len(hits) else float("nan")

    def longest_match(self, ids) -> Match:
        """The longest run of ``ids`` that occurs verbatim in the corpus (the first, if several).

        Binary search over the length (a window that occurs has all its sub-windows occurring),
        then the match is located in the corpus and compared token by token.
        """
        ids = _as_ids(ids, "ids")
        low, high = 0, min(len(ids), len(self.corpus))  # low occurs (empty), high + 1 does not
        while low < high:
            mid = (low + high + 1) // 2
            if self.occurs(ids, mid).any():
                low = mid
            else:
                high = mid - 1
        if low == 0:
            return Match(0, 0, 0)
        start = int(np.flatnonzero(self.occurs(ids, low))[0])
        window = ids[start: start + low]
        # the corpus positions that hold the window's first token, narrowed token by token: exact,
        # and far cheaper than hashing every corpus window of this length again
        candidates = np.flatnonzero(self.corpus[: len(self.corpus) - low + 1] == window[0])
        for k in range(1, low):
            candidates = candidates[self.corpus[candidates + k] == window[k]]
        if len(candidates):
            return Match(low, start, int(candidates[0]))
        raise RuntimeError("a 64-bit hash collision: the window's hash occurs in the corpus but its tokens do not")
