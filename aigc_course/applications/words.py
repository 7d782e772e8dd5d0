"""Word-level text for chapter 6.3's small models: a vocabulary and teacher-forcing batches.

The texts of 6.3 are written by code from a small set of words, so one token per word (or
number, or punctuation mark, separated by spaces) keeps the models small and quick to train.
"""

from __future__ import annotations

import torch

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"


class Vocabulary:
    """Words <-> ids. Id 0 is ``<pad>``, then ``<bos>``, ``<eos>`` and the words given."""

    def __init__(self, words):
        self.itos = [PAD, BOS, EOS] + sorted(set(words) - {PAD, BOS, EOS})
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``'s space-separated words; a word outside the vocabulary is an error."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        unknown = [w for w in text.split() if w not in self.stoi]
        if unknown:
            raise ValueError(f"text has words outside the vocabulary: {unknown}")
        return [self.stoi[w] for w in text.split()]

    def decode(self, ids) -> str:
        """Words up to the first ``<eos>``, specials dropped."""
        words = []
        for i in ids:
            word = self.itos[int(i)]
            if word == EOS:
                break
            if word not in (PAD, BOS):
                words.append(word)
        return " ".join(words)


def shifted_ids(texts: list[str], vocab: Vocabulary) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` for teacher forcing, each ``(B, T)``: ``<bos> text`` and ``text <eos>``,
    padded (``<pad>`` in the inputs, ``-1`` in the targets: not scored)."""
    if isinstance(texts, str) or not isinstance(texts, list | tuple) or not texts:
        raise ValueError(f"texts must be a non-empty list of str, got {texts!r:.60}")
    encoded = [vocab.encode(t) for t in texts]
    width = max(len(e) for e in encoded) + 1
    pad, bos, eos = vocab.stoi[PAD], vocab.stoi[BOS], vocab.stoi[EOS]
    # one tensor from padded lists: a tensor per row costs more than the model's step on short texts
    inputs = torch.tensor([[bos, *e] + [pad] * (width - 1 - len(e)) for e in encoded], dtype=torch.long)
    targets = torch.tensor([[*e, eos] + [-1] * (width - 1 - len(e)) for e in encoded], dtype=torch.long)
    return inputs, targets
