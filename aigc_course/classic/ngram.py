"""A character n-gram language model: AI 1.0's statistical approach to text.

The model predicts the next character from the previous ``n - 1`` by counting:

.. math:: P(w \\mid h) \\approx \\frac{c(h\\,w)}{c(h)}

Counts alone give probability zero to anything unseen, so the model is *smoothed*:

* ``"add_k"`` (Laplace when k = 1): :math:`P(w\\mid h) = (c(hw)+k)/(c(h)+kV)`;
* ``"kneser_ney"`` (interpolated, Chen & Goodman 1999): subtract a discount :math:`D` from
  every seen count and give the freed mass to a lower-order model that counts in how many
  *different contexts* a string appears, not how often.

Counting and scoring are vectorised with NumPy: every m-gram becomes one integer in base
``V + 1`` (the alphabet plus a begin-of-text symbol), so a 5-gram model of two million
characters fits and scores in seconds.
"""

from __future__ import annotations

import math

import numpy as np

SMOOTHINGS = ("kneser_ney", "add_k")


class NGramLanguageModel:
    """Character n-gram model with add-k or interpolated Kneser–Ney smoothing.

    ``order`` is n (1 to 5 here, since each n-gram must fit in one int64 id). Characters
    not seen in training map to one unknown symbol; the text is padded at its start with
    ``n - 1`` begin symbols so every position has a full context.
    """

    UNKNOWN = "\x00"

    def __init__(self, order: int, smoothing: str = "kneser_ney", k: float = 1.0):
        if not isinstance(order, int) or not 1 <= order <= 5:
            raise ValueError(f"order must be an int from 1 to 5, got {order!r}")
        if smoothing not in SMOOTHINGS:
            raise ValueError(f"smoothing must be one of {SMOOTHINGS}, got {smoothing!r}")
        if k <= 0:
            raise ValueError(f"k must be positive for add-k smoothing, got {k}")
        self.order, self.smoothing, self.k = order, smoothing, k
        self.alphabet: list[str] = []
        self._tables: list[dict] = []

    # ------------------------------------------------------------------ encoding

    @property
    def vocab_size(self) -> int:
        """Number of symbols predicted: the training characters plus the unknown symbol."""
        return len(self.alphabet)

    def encode(self, text: str) -> np.ndarray:
        """Characters -> ids in ``[0, V)``, unseen characters -> the unknown id. ``(len(text),)``."""
        if not self.alphabet:
            raise RuntimeError("call fit(text) before encoding or scoring")
        lookup = np.full(0x110000 if any(ord(c) > 0xFFFF for c in text) else 0x10000, self._unk, dtype=np.int64)
        for i, ch in enumerate(self.alphabet):
            lookup[ord(ch)] = i
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        return lookup[codes]

    def _padded(self, ids: np.ndarray) -> np.ndarray:
        bos = self.vocab_size  # one past the last predicted symbol
        return np.concatenate([np.full(self.order - 1, bos, dtype=np.int64), ids])

    def _gram_keys(self, padded: np.ndarray, m: int) -> np.ndarray:
        """Integer id of the m-gram ending at each real position: ``(len(padded) - n + 1,)``."""
        base = self.vocab_size + 1
        start = self.order - m
        length = len(padded) - self.order + 1
        key = np.zeros(length, dtype=np.int64)
        for j in range(m):
            key = key * base + padded[start + j : start + j + length]
        return key

    # ------------------------------------------------------------------ training

    def fit(self, text: str) -> NGramLanguageModel:
        """Count every m-gram (m = 1..n) of ``text``."""
        if not isinstance(text, str) or len(text) < self.order:
            raise ValueError(f"text must be a str of at least {self.order} characters to fit an order-{self.order} model")
        self.alphabet = sorted(set(text) - {self.UNKNOWN}) + [self.UNKNOWN]
        self._unk = len(self.alphabet) - 1
        padded = self._padded(self.encode(text))
        base = self.vocab_size + 1
        raw = {m: np.unique(self._gram_keys(padded, m), return_counts=True) for m in range(1, self.order + 1)}
        self._tables = [None]  # index m holds the table of order m
        for m in range(1, self.order + 1):
            if self.smoothing == "kneser_ney" and m < self.order:
                # Continuation count N1+(. g): in how many distinct contexts the m-gram g ends an (m+1)-gram.
                higher_keys = raw[m + 1][0]
                keys, counts = np.unique(higher_keys % base**m, return_counts=True)
            else:
                keys, counts = raw[m]
            contexts, inverse = np.unique(keys // base, return_inverse=True)
            totals = np.bincount(inverse, weights=counts).astype(np.float64)
            types = np.bincount(inverse).astype(np.float64)
            # Ney's estimate D = n1 / (n1 + 2 n2), kept inside [0.1, 0.9] so that unseen
            # characters always keep some probability, even on tiny texts without singletons.
            n1, n2 = np.sum(counts == 1), np.sum(counts == 2)
            discount = min(max(n1 / (n1 + 2 * n2) if n1 + n2 > 0 else 0.5, 0.1), 0.9)
            self._tables.append(
                {"keys": keys, "counts": counts.astype(np.float64), "contexts": contexts,
                 "totals": totals, "types": types, "discount": float(discount)}
            )
        return self

    # ------------------------------------------------------------------ scoring

    @staticmethod
    def _lookup(sorted_keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(sorted_keys, queries)
        idx = np.clip(idx, 0, max(len(sorted_keys) - 1, 0))
        found = sorted_keys[idx] == queries if len(sorted_keys) else np.zeros(len(queries), bool)
        return np.where(found, values[idx] if len(values) else 0.0, 0.0)

    def _probs_for_keys(self, full_keys: np.ndarray) -> np.ndarray:
        """P(w | h) for n-gram ids ``(N,)`` (the last digit is w, the others are h)."""
        if not self._tables:
            raise RuntimeError("call fit(text) before scoring")
        base, V = self.vocab_size + 1, self.vocab_size
        if self.smoothing == "add_k":
            t = self._tables[self.order]
            c_hw = self._lookup(t["keys"], t["counts"], full_keys)
            c_h = self._lookup(t["contexts"], t["totals"], full_keys // base)
            return (c_hw + self.k) / (c_h + self.k * V)
        prob = np.full(len(full_keys), 1.0 / V)
        for m in range(1, self.order + 1):
            t = self._tables[m]
            keys = full_keys % base**m
            a = self._lookup(t["keys"], t["counts"], keys)
            total = self._lookup(t["contexts"], t["totals"], keys // base)
            types = self._lookup(t["contexts"], t["types"], keys // base)
            d = t["discount"]
            seen = total > 0
            safe = np.where(seen, total, 1.0)
            interpolated = np.maximum(a - d, 0.0) / safe + d * types / safe * prob
            prob = np.where(seen, interpolated, prob)
        return prob

    def log2_probs(self, text: str) -> np.ndarray:
        """log2 P(x_i | previous n-1 characters) for every character of ``text``. ``(len(text),)``."""
        if not isinstance(text, str) or not text:
            raise ValueError("text must be a non-empty str")
        padded = self._padded(self.encode(text))
        return np.log2(self._probs_for_keys(self._gram_keys(padded, self.order)))

    def bits_per_char(self, text: str) -> float:
        """Average negative log2-probability per character (lower is better)."""
        return float(-self.log2_probs(text).mean())

    def perplexity(self, text: str) -> float:
        """Per-character perplexity, ``2 ** bits_per_char``."""
        return 2.0 ** self.bits_per_char(text)

    def next_char_distribution(self, context: str) -> np.ndarray:
        """P(w | context) over the alphabet ``(V,)``; uses the last n-1 characters of ``context``."""
        padded = self._padded(self.encode(context)) if context else np.full(self.order - 1, self.vocab_size, np.int64)
        base = self.vocab_size + 1
        prefix = 0
        for c in padded[len(padded) - (self.order - 1) :]:
            prefix = prefix * base + int(c)
        probs = self._probs_for_keys(prefix * base + np.arange(self.vocab_size, dtype=np.int64))
        probs[self._unk] = 0.0  # never generate the unknown symbol
        return probs / probs.sum()

    def generate(self, prompt: str = "", num_chars: int = 200, seed: int = 0, temperature: float = 1.0) -> str:
        """Sample ``num_chars`` characters after ``prompt``, one at a time."""
        if num_chars < 0:
            raise ValueError(f"num_chars must be >= 0, got {num_chars}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        rng = np.random.default_rng(seed)
        out = list(prompt)
        for _ in range(num_chars):
            p = self.next_char_distribution("".join(out[-(self.order - 1) :]) if self.order > 1 else "")
            if temperature != 1.0:
                p = p ** (1.0 / temperature)
                p /= p.sum()
            out.append(self.alphabet[rng.choice(self.vocab_size, p=p)])
        return "".join(out)

    def num_parameters(self) -> int:
        """Number of stored counts: the model's size, comparable to a network's parameter count."""
        return int(sum(len(t["keys"]) for t in self._tables[1:]))

    def __repr__(self) -> str:
        fitted = f", V={self.vocab_size}" if self.alphabet else ""
        return f"NGramLanguageModel(order={self.order}, smoothing={self.smoothing!r}{fitted})"


def log2_to_nats(bits: float) -> float:
    """Bits -> nats, for comparing with cross-entropy losses in PyTorch (which use nats)."""
    return bits * math.log(2)
