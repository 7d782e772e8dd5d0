"""One token sequence for a text and its speech, so that a GPT can read the one and write the other.

Like VALL-E (Wang et al. 2023), text-to-speech becomes next-token prediction over a single
sequence: the words of the text (one token per digit word), padded to a fixed length, a token
that opens the audio, the audio tokens of :class:`~aigc_course.speech.codec.MelCodebook` (offset
past the other ids), and a token that closes it::

    four two · · <audio> a17 a17 a203 ... a4 </audio>
    └ text_length ┘       └─ 50 tokens a second ─┘

Every text starts at position 0 and every clip at position ``text_length + 1``, so a batch
needs no padding mask. The loss is taken on the audio tokens and the closing token only: the
text is given, the model learns ``P(audio token | text, audio so far)`` (book eq. 3.1.3).
Large systems read characters or phonemes; with ten words, a token per word keeps the
sequence short enough to train on a CPU in minutes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from aigc_course.speech.corpus import DIGIT_WORDS

PAD = len(DIGIT_WORDS)  # fills the text field after the text; word w has id DIGIT_WORDS.index(w)
BEGIN_AUDIO = PAD + 1
END_AUDIO = PAD + 2
AUDIO_OFFSET = PAD + 3  # audio token k has id AUDIO_OFFSET + k


def vocab_size(num_codes: int) -> int:
    """The ten words, the three special tokens and ``num_codes`` audio tokens."""
    return AUDIO_OFFSET + num_codes


def encode_prompts(texts: Sequence[str], text_length: int) -> torch.Tensor:
    """Checked texts of digit words -> the prompt ids ``(B, text_length + 1)``: words, padding, ``BEGIN_AUDIO``."""
    prompts = torch.full((len(texts), text_length + 1), PAD, dtype=torch.long)
    prompts[:, -1] = BEGIN_AUDIO
    for row, text in enumerate(texts):
        words = text.split()
        if len(words) > text_length:
            raise ValueError(f"text {text!r} has {len(words)} words; the model reads at most {text_length}")
        unknown = [w for w in words if w not in DIGIT_WORDS]
        if unknown:
            raise ValueError(f"text {text!r} has words outside the vocabulary: {unknown}; "
                             f"the model reads the ten digit words {' '.join(DIGIT_WORDS)}")
        prompts[row, : len(words)] = torch.tensor([DIGIT_WORDS.index(w) for w in words])
    return prompts


def training_batch(texts: Sequence[str], codes: Sequence[torch.Tensor], text_length: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-token targets ``(B, T)`` for texts and their audio tokens ``(frames_i,)``.

    ``T = text_length + 1 + max frames``; the targets are ``-1`` (ignored) wherever the next
    token is text or padding after the clip's end.
    """
    prompts = encode_prompts(texts, text_length)
    longest = max(len(c) for c in codes)
    width = text_length + 2 + longest  # prompt, codes, END_AUDIO
    sequence = torch.full((len(texts), width), END_AUDIO, dtype=torch.long)
    targets_full = torch.full((len(texts), width), -1, dtype=torch.long)
    start = text_length + 1
    for row, clip in enumerate(codes):
        sequence[row, :start] = prompts[row]
        sequence[row, start : start + len(clip)] = clip + AUDIO_OFFSET
        targets_full[row, start : start + len(clip) + 1] = sequence[row, start : start + len(clip) + 1]
    return sequence[:, :-1], targets_full[:, 1:]
