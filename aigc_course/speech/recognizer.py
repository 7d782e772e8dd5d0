"""The judge: a small speech recogniser trained on real clips only, and the scores it gives.

:class:`SpeechRecognizer` reads a log-mel spectrogram ``(frames, n_mels)`` and writes, for every
second frame, a distribution over the ten digit words plus a *blank*. It is trained with the
connectionist temporal classification loss (CTC, Graves et al. 2006): the probability of a text
is the sum over every frame-by-frame labelling that collapses to it (merge repeated labels, then
drop blanks), so no one has to say where each word starts. Reading is greedy: the most likely
label per frame, collapsed the same way (:func:`ctc_greedy_decode`).

It is trained by ``scripts/train_speech_recognizer.py`` (checkpoint ``speech-recognizer``) on
eSpeak NG clips of the *training* texts in seventeen voices; its accuracy is measured on the
held-out texts. A generated clip "is recognised as its text" when the recogniser's reading of it
equals the text exactly, every word in order: :func:`recognition_accuracy`.
:func:`mel_distance` compares two clips' spectrograms after aligning them in time.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aigc_course.pretrained import capture_config
from aigc_course.runtime import resolve_device
from aigc_course.speech.corpus import DIGIT_WORDS, check_words
from aigc_course.speech.features import DEFAULT_MEL, MelConfig, log_mel

BLANK = len(DIGIT_WORDS)  # label 10: "no new word here"
FEATURE_FLOOR = -9.0  # log-mel energies below this (about 39 dB under a loud vowel) count as silence


class ResidualConv(nn.Module):
    """``x + conv(gelu(conv(x)))`` over ``(B, C, T)``: two 1-D convolutions of width ``kernel``."""

    def __init__(self, channels: int, kernel: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(channels, channels, kernel, padding=kernel // 2), nn.GELU(), nn.Dropout(dropout),
            nn.Conv1d(channels, channels, kernel, padding=kernel // 2),
        )
        self.norm = nn.GroupNorm(1, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(self.norm(x))


class SpeechRecognizer(nn.Module):
    """Log-mel ``(B, T, n_mels)`` -> CTC log-probabilities ``(B, ceil(T/2), 11)`` over digits + blank.

    A convolution halves the frame rate (to 25 a second, 40 ms per output), then ``num_blocks``
    residual blocks of two convolutions each widen the view to about 0.9 s around each output
    frame, enough for a word and its neighbours; a linear layer gives the labels. All
    convolutions, no recurrence: every frame is computed at once. The features are floored at
    :data:`FEATURE_FLOOR` and standardised with the training set's per-band mean and standard
    deviation (buffers, saved with the weights).
    """

    @capture_config
    def __init__(self, n_mels: int = 80, channels: int = 128, num_blocks: int = 3, kernel: int = 5,
                 dropout: float = 0.1):
        super().__init__()
        self.n_mels = n_mels
        self.register_buffer("feature_mean", torch.zeros(n_mels))
        self.register_buffer("feature_std", torch.ones(n_mels))
        self.stem = nn.Conv1d(n_mels, channels, kernel, stride=2, padding=kernel // 2)
        self.blocks = nn.Sequential(*[ResidualConv(channels, kernel, dropout) for _ in range(num_blocks)])
        self.norm = nn.GroupNorm(1, channels)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels, len(DIGIT_WORDS) + 1)

    @torch.no_grad()
    def set_normalisation(self, features: torch.Tensor) -> None:
        """Per-band mean and standard deviation of training frames ``(frames, n_mels)``."""
        floored = features.clamp(min=FEATURE_FLOOR)
        self.feature_mean.copy_(floored.mean(0))
        self.feature_std.copy_(floored.std(0).clamp(min=1e-3))

    @staticmethod
    def output_lengths(lengths: torch.Tensor) -> torch.Tensor:
        """Frames after the stride-2 convolution: ``ceil(T / 2)`` (kernel 5, padding 2)."""
        return (lengths + 1) // 2

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features (B, T, n_mels)`` -> log-probabilities ``(B, ceil(T/2), 11)`` (label 10 is the blank)."""
        if features.dim() != 3 or features.shape[-1] != self.n_mels:
            raise ValueError(f"features must have shape (B, T, {self.n_mels}), got {tuple(features.shape)}")
        x = (features.clamp(min=FEATURE_FLOOR) - self.feature_mean) / self.feature_std
        x = self.blocks(self.stem(x.transpose(1, 2)))  # (B, channels, ceil(T/2))
        x = F.gelu(self.norm(x)).transpose(1, 2)
        return self.head(self.dropout(x)).log_softmax(-1)

    def loss(self, features: torch.Tensor, lengths: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        """Mean CTC loss per clip of padded ``features (B, T, n_mels)`` with true ``lengths (B,)``."""
        targets = [torch.tensor([DIGIT_WORDS.index(w) for w in t.split()]) for t in texts]
        log_probs = self(features)
        return F.ctc_loss(log_probs.transpose(0, 1), torch.cat(targets).to(features.device),
                          self.output_lengths(lengths), torch.tensor([len(t) for t in targets]),
                          blank=BLANK, reduction="mean", zero_infinity=True)

    @torch.no_grad()
    def read(self, features: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        """The text read from padded ``features (B, T, n_mels)`` (greedy CTC decoding)."""
        log_probs = self(features)
        return [" ".join(DIGIT_WORDS[i] for i in labels)
                for labels in ctc_greedy_decode(log_probs, self.output_lengths(lengths))]


def ctc_greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor | None = None, blank: int = BLANK) -> list[list[int]]:
    """Best label per frame, repeats merged, blanks dropped: ``(B, T, C)`` -> ``B`` label lists.

    ``lengths (B,)`` gives how many frames of each row are real (default: all ``T``).
    """
    if log_probs.dim() != 3:
        raise ValueError(f"log_probs must have shape (B, T, C), got {tuple(log_probs.shape)}")
    best = log_probs.argmax(-1).cpu()
    lengths = torch.full((len(best),), best.shape[1]) if lengths is None else lengths.cpu()
    out = []
    for row, n in zip(best, lengths.tolist(), strict=True):
        row = row[:n]
        keep = torch.ones_like(row, dtype=torch.bool)
        keep[1:] = row[1:] != row[:-1]
        out.append([int(label) for label in row[keep & (row != blank)]])
    return out


# --------------------------------------------------------------------------- batches of clips


def trim_padding(audio: torch.Tensor | np.ndarray) -> np.ndarray:
    """A waveform without the exact zeros a batch padded it with at its end."""
    audio = audio.detach().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
    nonzero = np.flatnonzero(audio)
    return audio[: nonzero[-1] + 1] if nonzero.size else audio[:1]


def pad_frames(frames: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-mel spectrograms ``(T_i, n_mels)`` -> ``(B, max T_i, n_mels)`` (padded with silence) and ``(B,)`` lengths."""
    lengths = torch.tensor([len(f) for f in frames])
    batch = torch.full((len(frames), int(lengths.max()), frames[0].shape[1]), FEATURE_FLOOR)
    for i, f in enumerate(frames):
        batch[i, : len(f)] = f
    return batch, lengths


def _clips(audio, name: str = "audio") -> list[np.ndarray]:
    """A waveform ``(samples,)``, a batch ``(N, samples)`` (zero-padded) or a list of waveforms."""
    if isinstance(audio, torch.Tensor | np.ndarray):
        if audio.ndim == 1:
            audio = [audio]
        elif audio.ndim != 2:
            raise ValueError(f"{name} must be (samples,), (N, samples) or a list of waveforms, got shape {tuple(audio.shape)}")
    if not isinstance(audio, Sequence | torch.Tensor | np.ndarray) or len(audio) == 0:
        raise ValueError(f"{name} must hold at least one waveform")
    return [trim_padding(a) for a in audio]


@lru_cache(maxsize=4)
def _cached_recognizer(device_str: str) -> SpeechRecognizer:
    from aigc_course import pretrained

    return pretrained.load("speech-recognizer", device=device_str)


def load_speech_recognizer(device: torch.device | str | None = None) -> SpeechRecognizer:
    """The shipped ``speech-recognizer`` in eval mode (loaded once per device)."""
    return _cached_recognizer(str(resolve_device(device)))


@torch.no_grad()
def transcribe(audio, recognizer: SpeechRecognizer | None = None, batch_size: int = 64,
               config: MelConfig = DEFAULT_MEL) -> list[str]:
    """The digit words the recogniser hears in each clip (see :func:`_clips` for the forms ``audio`` takes)."""
    recognizer = load_speech_recognizer() if recognizer is None else recognizer
    device = next(recognizer.parameters()).device
    frames = [log_mel(a, config) for a in _clips(audio)]
    texts = []
    for i in range(0, len(frames), batch_size):
        batch, lengths = pad_frames(frames[i : i + batch_size])
        texts += recognizer.read(batch.to(device), lengths.to(device))
    return texts


def recognition_accuracy(audio, texts: Sequence[str], recognizer: SpeechRecognizer | None = None) -> float:
    """Fraction of clips whose transcription equals their text exactly (every word, in order)."""
    texts = [check_words(t, f"texts[{i}]", max_words=len(t.split()) if isinstance(t, str) else 0)
             for i, t in enumerate(texts)]
    clips = _clips(audio)
    if len(clips) != len(texts):  # checked before the clips are transcribed
        raise ValueError(f"texts must give one text per clip ({len(clips)}), got {len(texts)}")
    heard = transcribe(clips, recognizer)
    return float(np.mean([h == t for h, t in zip(heard, texts, strict=True)]))


def mel_distance(a, b, config: MelConfig = DEFAULT_MEL) -> float:
    """Spectrogram distance between two clips: mean absolute log-mel difference along the best time alignment.

    Dynamic time warping (:func:`librosa.sequence.dtw`) pairs each frame of one clip with a
    frame of the other so that the summed distance is least, allowing one clip to be faster;
    the result is the mean per pair and per mel band, in nats of energy (log-mel floored at
    :data:`FEATURE_FLOOR`, so silence far below speech counts alike).
    """
    import librosa

    x, y = (log_mel(trim_padding(c), config).clamp(min=FEATURE_FLOOR).numpy() for c in (a, b))
    cost, path = librosa.sequence.dtw(X=x.T, Y=y.T, metric="cityblock")
    return float(cost[-1, -1] / len(path) / config.n_mels)
