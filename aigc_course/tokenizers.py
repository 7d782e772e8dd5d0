"""Tokenizers trained from scratch: characters and byte-level BPE (GPT-2's scheme).

A language model sees integer ids, not text. :class:`CharTokenizer` gives every character
its own id (small vocabulary, long sequences). :class:`ByteBPETokenizer` starts from the
256 byte values of UTF-8 -- so *any* Unicode text, Chinese included, can be encoded -- and
learns merges of the most frequent adjacent pair (Sennrich et al. 2016; GPT-2, Radford et
al. 2019), giving shorter sequences. Text is first split into chunks (words, numbers,
punctuation runs, whitespace runs) and merges never cross a chunk boundary.

Both save to and load from JSON, and ``decode(encode(text)) == text`` exactly.
"""

from __future__ import annotations

import json
import operator
import re
from collections import Counter
from pathlib import Path
from typing import Any

# GPT-2's pre-tokenizer, written for Python's ``re``: letters/underscore runs, digit runs,
# punctuation runs (each with one optional leading space), and whitespace runs that leave
# the last space to the next word. Every character matches exactly one branch.
SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?[^\W\d]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+"""


def _check_text(text: Any, name: str = "text") -> str:
    if not isinstance(text, str):
        raise ValueError(f"{name} must be a str, got {type(text).__name__}")
    return text


def is_integer_dtype(dtype) -> bool:
    """Whether a torch or NumPy ``dtype`` holds integers, as token ids must (bool does not count)."""
    name = str(dtype)  # torch.int64, torch.uint8, int32, ... ; not torch.float32, torch.bool
    return "int" in name and "bool" not in name


def as_token_ids(ids, vocab_size: int, name: str = "ids") -> list[int]:
    """``ids`` -- a sequence of ints, or a 1-D integer tensor or array -- as a list of ints in ``[0, vocab_size)``.

    Floats and bools are refused, not truncated: a float id is almost always a bug upstream
    (an id that went through a float tensor), and ``int(2.7) == 2`` would hide it.
    """
    if hasattr(ids, "dtype") and hasattr(ids, "tolist"):  # a torch tensor or a NumPy array
        if not is_integer_dtype(ids.dtype):
            raise ValueError(f"{name} must hold integer token ids, got dtype {ids.dtype}")
        if len(ids.shape) != 1:
            raise ValueError(f"{name} must be a sequence of token ids (1-D), got shape {tuple(ids.shape)}")
        ids = ids.tolist()
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        raise ValueError(f"{name} must be a sequence of integer token ids, got {type(ids).__name__}")
    out = []
    for i in ids:
        if isinstance(i, bool):
            raise ValueError(f"{name} must hold integer token ids, got the bool {i!r}")
        try:
            out.append(operator.index(i))  # ints, NumPy integers, 0-d integer tensors; not floats
        except TypeError:
            raise ValueError(f"{name} must hold integer token ids, got {i!r} ({type(i).__name__})") from None
    bad = [i for i in out if not 0 <= i < vocab_size]
    if bad:
        raise ValueError(f"{name} must be in [0, {vocab_size}), got {bad[:5]}")
    return out


def _write_json(path: Path | str, payload: dict) -> None:
    Path(path).write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")


def _read_json(path: Path | str, kind: str) -> dict:
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    if payload.get("type") != kind:
        raise ValueError(f"{path} holds a {payload.get('type')!r} tokenizer, expected {kind!r}")
    return payload


class CharTokenizer:
    """One id per character seen in training, in sorted order."""

    def __init__(self, chars: list[str]):
        if not chars or any(not isinstance(c, str) or len(c) != 1 for c in chars) or len(set(chars)) != len(chars):
            raise ValueError("chars must be a non-empty list of distinct single characters")
        self.chars = list(chars)
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        """The vocabulary is the set of characters of ``text``."""
        if not _check_text(text):
            raise ValueError("text must be non-empty to train a tokenizer")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        _check_text(text)
        try:
            return [self.stoi[c] for c in text]
        except KeyError as err:
            raise ValueError(f"character {err.args[0]!r} is not in this tokenizer's vocabulary") from None

    def decode(self, ids) -> str:
        """Integer ids (a list, or a 1-D integer tensor) -> text; float ids are a ``ValueError``."""
        return "".join(self.chars[i] for i in as_token_ids(ids, len(self.chars)))

    def to_dict(self) -> dict:
        return {"type": "char", "chars": self.chars}

    @classmethod
    def from_dict(cls, payload: dict) -> CharTokenizer:
        return cls(payload["chars"])

    def save(self, path: Path | str) -> None:
        _write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: Path | str) -> CharTokenizer:
        return cls.from_dict(_read_json(path, "char"))


def _merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of ``pair`` in ``ids``, left to right."""
    out, i, n = [], 0, len(ids)
    while i < n:
        if i < n - 1 and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _pairs(ids: list[int]) -> Counter:
    return Counter(zip(ids, ids[1:], strict=False))


class ByteBPETokenizer:
    """Byte-level BPE: ids 0-255 are bytes, id ``256 + r`` is the ``r``-th learned merge."""

    def __init__(self, merges: list[tuple[int, int]], pattern: str = SPLIT_PATTERN):
        self.merges = [tuple(int(x) for x in m) for m in merges]
        for r, (a, b) in enumerate(self.merges):
            if not (0 <= a < 256 + r and 0 <= b < 256 + r):
                raise ValueError(f"merge {r} = {(a, b)} refers to an id not yet defined")
        self.pattern = pattern
        self._regex = re.compile(pattern)
        self.ranks = {pair: r for r, pair in enumerate(self.merges)}
        self.vocab = [bytes([i]) for i in range(256)]
        for a, b in self.merges:
            self.vocab.append(self.vocab[a] + self.vocab[b])
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def train(cls, text: str, vocab_size: int, pattern: str = SPLIT_PATTERN) -> ByteBPETokenizer:
        """Learn ``vocab_size - 256`` merges from ``text``.

        Works on the counts of distinct chunks and updates pair counts incrementally, so
        each merge touches only the chunks that contain the merged pair.
        """
        _check_text(text)
        if not isinstance(vocab_size, int) or vocab_size < 256:
            raise ValueError(f"vocab_size must be an int >= 256 (the byte alphabet), got {vocab_size!r}")
        chunk_counts = Counter(re.findall(pattern, text))
        words = [list(chunk.encode("utf-8")) for chunk in chunk_counts]
        freqs = list(chunk_counts.values())
        stats: Counter = Counter()
        where: dict[tuple[int, int], set[int]] = {}
        for w, (ids, f) in enumerate(zip(words, freqs, strict=True)):
            for pair in zip(ids, ids[1:], strict=False):
                stats[pair] += f
                where.setdefault(pair, set()).add(w)
        merges: list[tuple[int, int]] = []
        for r in range(vocab_size - 256):
            if not stats:
                break
            best = max(stats.items(), key=lambda kv: (kv[1], (-kv[0][0], -kv[0][1])))[0]
            if stats[best] < 2:
                break  # nothing repeats any more
            new_id = 256 + r
            merges.append(best)
            for w in list(where.get(best, ())):
                old = words[w]
                new = _merge(old, best, new_id)
                f = freqs[w]
                for pair, c in _pairs(old).items():
                    stats[pair] -= c * f
                    if stats[pair] <= 0:
                        del stats[pair]
                    where[pair].discard(w)
                for pair, c in _pairs(new).items():
                    stats[pair] += c * f
                    where.setdefault(pair, set()).add(w)
                words[w] = new
            stats.pop(best, None)
            where.pop(best, None)
        return cls(merges, pattern)

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.merges)

    def _encode_chunk(self, chunk: str) -> list[int]:
        cached = self._cache.get(chunk)
        if cached is not None:
            return cached
        ids = list(chunk.encode("utf-8"))
        while len(ids) > 1:
            pair = min(zip(ids, ids[1:], strict=False), key=lambda p: self.ranks.get(p, float("inf")))
            if pair not in self.ranks:
                break
            ids = _merge(ids, pair, 256 + self.ranks[pair])
        if len(self._cache) < 200_000:
            self._cache[chunk] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        """Text -> ids, applying merges in the order they were learned."""
        _check_text(text)
        out: list[int] = []
        for chunk in self._regex.findall(text):
            out.extend(self._encode_chunk(chunk))
        return out

    def decode_bytes(self, ids) -> bytes:
        """Integer ids (a list, or a 1-D integer tensor) -> bytes; float ids are a ``ValueError``."""
        return b"".join(self.vocab[i] for i in as_token_ids(ids, self.vocab_size))

    def decode(self, ids, errors: str = "replace") -> str:
        """Ids -> text. A model may emit a partial UTF-8 sequence; ``errors`` says what to do."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    def token_strings(self, ids) -> list[str]:
        """Each id as readable text (partial UTF-8 shown with replacement marks)."""
        return [self.vocab[i].decode("utf-8", errors="replace") for i in as_token_ids(ids, self.vocab_size)]

    def to_dict(self) -> dict:
        return {"type": "byte_bpe", "pattern": self.pattern, "merges": [list(m) for m in self.merges]}

    @classmethod
    def from_dict(cls, payload: dict) -> ByteBPETokenizer:
        return cls([tuple(m) for m in payload["merges"]], payload.get("pattern", SPLIT_PATTERN))

    def save(self, path: Path | str) -> None:
        _write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: Path | str) -> ByteBPETokenizer:
        return cls.from_dict(_read_json(path, "byte_bpe"))


def tokenizer_from_dict(payload: dict) -> CharTokenizer | ByteBPETokenizer:
    """Rebuild either tokenizer from its ``to_dict()`` form (used by checkpoints)."""
    kinds = {"char": CharTokenizer, "byte_bpe": ByteBPETokenizer}
    if payload.get("type") not in kinds:
        raise ValueError(f"tokenizer type must be one of {sorted(kinds)}, got {payload.get('type')!r}")
    return kinds[payload["type"]].from_dict(payload)
