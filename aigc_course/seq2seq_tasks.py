"""A sequence-to-sequence task to train in seconds: reverse a list of digits (book 3.1.1).

``3 1 4 1 5  ->  5 1 4 1 3``. The sources have different lengths, so a batch is padded and
the padding must be masked -- the situation the encoder's ``source_mask`` is for. The same
task is posed two ways, for the same model budget:

* **encoder-decoder** (:class:`~aigc_course.seq2seq.EncoderDecoderTransformer`): the encoder
  reads the digits, the decoder writes ``<bos> 5 1 4 1 3 <eos>`` attending to them;
* **decoder only** (:class:`~aigc_course.gpt.GPT`): one sequence
  ``3 1 4 1 5 <bos> 5 1 4 1 3 <eos>``, the source a prefix the loss does not score.

Token ids: digits ``0..9``, then ``<pad>`` (10), ``<bos>`` (11), ``<eos>`` (12).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aigc_course import decoding

PAD, BOS, EOS = 10, 11, 12
VOCAB_SIZE = 13


@dataclass
class ReversalBatch:
    """One batch in both layouts (``-1`` targets are not scored).

    ``source (B, S)`` digits padded with ``<pad>``, ``source_mask (B, S)`` (``True`` = digit),
    ``target_in / target_out (B, S + 1)``: ``<bos> y`` / ``y <eos>`` for the decoder;
    ``prefix_in / prefix_out (B, 2S + 1)``: ``x <bos> y`` / the next tokens, scored on ``y <eos>`` only.
    """

    source: torch.Tensor
    source_mask: torch.Tensor
    target_in: torch.Tensor
    target_out: torch.Tensor
    prefix_in: torch.Tensor
    prefix_out: torch.Tensor
    lengths: torch.Tensor


class ReversalTask:
    """Digit lists of ``min_length .. max_length`` digits and their reversals."""

    def __init__(self, min_length: int = 3, max_length: int = 8):
        if isinstance(min_length, bool) or not isinstance(min_length, int) or min_length < 1:
            raise ValueError(f"min_length must be a positive int, got {min_length!r}")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < min_length:
            raise ValueError(f"max_length must be an int >= min_length={min_length}, got {max_length!r}")
        self.min_length, self.max_length = min_length, max_length

    @property
    def target_block_size(self) -> int:
        return self.max_length + 1

    @property
    def prefix_block_size(self) -> int:
        return 2 * self.max_length + 1

    def batch(self, n: int, generator: torch.Generator | None = None) -> ReversalBatch:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        s = self.max_length
        lengths = torch.randint(self.min_length, s + 1, (n,), generator=generator)
        digits = torch.randint(0, 10, (n, s), generator=generator)
        mask = torch.arange(s)[None, :] < lengths[:, None]
        source = digits.masked_fill(~mask, PAD)
        target_in = torch.full((n, s + 1), EOS)
        target_out = torch.full((n, s + 1), -1)
        prefix_in = torch.full((n, 2 * s + 1), EOS)
        prefix_out = torch.full((n, 2 * s + 1), -1)
        for i, length in enumerate(lengths.tolist()):
            x = digits[i, :length]
            y = x.flip(0)
            target_in[i, : length + 1] = torch.cat([torch.tensor([BOS]), y])
            target_out[i, : length + 1] = torch.cat([y, torch.tensor([EOS])])
            prefix_in[i, : 2 * length + 1] = torch.cat([x, torch.tensor([BOS]), y])
            prefix_out[i, length : 2 * length + 1] = torch.cat([y, torch.tensor([EOS])])
        return ReversalBatch(source, mask, target_in, target_out, prefix_in, prefix_out, lengths)

    @staticmethod
    def encoder_decoder_loss(model, batch: ReversalBatch) -> torch.Tensor:
        return model(batch.source, batch.target_in, batch.source_mask, batch.target_out)[1]

    @staticmethod
    def decoder_only_loss(model, batch: ReversalBatch) -> torch.Tensor:
        return model(batch.prefix_in, batch.prefix_out)[1]

    @torch.no_grad()
    def exact_match(self, model, batch: ReversalBatch) -> float:
        """Fraction of the batch reversed exactly by greedy decoding (the whole answer, ``<eos>`` included)."""
        n = len(batch.source)
        right = 0
        if hasattr(model, "encode"):  # encoder-decoder
            out = model.generate(batch.source, torch.full((n, 1), BOS), self.max_length + 1,
                                 source_mask=batch.source_mask)
            for i, length in enumerate(batch.lengths.tolist()):
                right += torch.equal(out[i, 1 : length + 2], batch.target_out[i, : length + 1])
            return right / n
        for length in batch.lengths.unique().tolist():  # decoder only: group rows by prompt length
            rows = (batch.lengths == length).nonzero().flatten()
            prompt = batch.prefix_in[rows, : length + 1]
            out = decoding.generate(model, prompt, length + 1)
            expected = batch.prefix_out[rows, length : 2 * length + 1]
            right += int((out[:, length + 1 :] == expected).all(dim=1).sum())
        return right / n
