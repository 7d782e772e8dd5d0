"""Chapter 2.3.3 exercises: the mel filterbank, Griffin–Lim, and greedy CTC decoding.

References: :func:`librosa.filters.mel` (HTK mel scale, no normalisation),
:func:`librosa.griffinlim` (plain Griffin–Lim: no momentum, zero starting phase) and
:func:`aigc_course.speech.ctc_greedy_decode`, the judge's reading of a clip.
"""

from __future__ import annotations

import numpy as np
import torch

from aigc_course.exercises.core import Case, Exercise, Variant, register
from aigc_course.speech.recognizer import ctc_greedy_decode

# ---------------------------------------------------------------------------- 2.3.3.1 mel filterbank


def _mel_reference(sample_rate, n_fft, n_mels, fmin, fmax):
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=True,
                               norm=None, dtype=np.float64)


def _triangles(edges_hz: np.ndarray, sample_rate: int, n_fft: int) -> np.ndarray:
    """Triangles rising from edges[m] to edges[m+1] and falling to edges[m+2] (the shape every variant shares)."""
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    n_mels = len(edges_hz) - 2
    weights = np.zeros((n_mels, len(freqs)))
    for m in range(n_mels):
        rising = (freqs - edges_hz[m]) / (edges_hz[m + 1] - edges_hz[m])
        falling = (edges_hz[m + 2] - freqs) / (edges_hz[m + 2] - edges_hz[m + 1])
        weights[m] = np.maximum(0, np.minimum(rising, falling))
    return weights


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def _mel_variant(kind: str):
    def wrong(case: Case):
        sr, n_fft, n_mels, fmin, fmax = case.args
        if kind == "linear":
            return _triangles(np.linspace(fmin, fmax, n_mels + 2), sr, n_fft)
        if kind == "mixed_logs":  # log10 on the way to mels, exp on the way back
            mels = np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2)
            return _triangles(700.0 * (np.exp(mels / 2595.0) - 1), sr, n_fft)
        edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
        weights = _triangles(edges, sr, n_fft)
        if kind == "slaney_norm":
            return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]
        if kind == "reversed":
            return weights[::-1].copy()
        return weights

    return wrong


def _mel_cases(gen: torch.Generator, device) -> list[Case]:
    cases = [Case("16 kHz, n_fft=1024, 80 bands up to 8 kHz (the chapter's settings)", (16000, 1024, 80, 0.0, 8000.0)),
             Case("22.05 kHz, n_fft=512, 40 bands from 50 Hz to 8 kHz", (22050, 512, 40, 50.0, 8000.0))]
    n_mels = int(torch.randint(8, 33, (), generator=gen))
    fmin = float(torch.randint(0, 300, (), generator=gen))
    cases.append(Case(f"8 kHz, n_fft=256, {n_mels} bands from {fmin:g} Hz to 4 kHz", (8000, 256, n_mels, fmin, 4000.0)))
    return cases


register(Exercise(
    id="2.3.3.1",
    title="The mel filterbank",
    function="mel_filters",
    reference=_mel_reference,
    cases=_mel_cases,
    variants=[
        Variant("the band edges are spaced evenly in Hz; space them evenly on the mel scale "
                "m = 2595 log10(1 + f / 700), then convert them back to Hz", _mel_variant("linear")),
        Variant("the way back from mels to Hz must undo the way there: m = 2595 log10(1 + f / 700) is undone "
                "by f = 700 (10^(m / 2595) - 1), not by exp", _mel_variant("mixed_logs")),
        Variant("your triangles are scaled to equal area (librosa's norm='slaney'); here every triangle "
                "peaks at 1", _mel_variant("slaney_norm")),
        Variant("the bands are in reverse order: row 0 is the lowest band", _mel_variant("reversed")),
    ],
    hints=[
        "Put n_mels + 2 points evenly on the mel scale between mel(fmin) and mel(fmax) and convert them back "
        "to Hz: band m rises from point m to point m + 1 and falls to point m + 2.",
        "The STFT bin k sits at frequency k * sample_rate / n_fft, for k = 0 .. n_fft // 2 "
        "(np.arange(n_fft // 2 + 1) * sample_rate / n_fft). Each weight is "
        "max(0, min(rising, falling)) with rising = (f - left) / (centre - left) and "
        "falling = (right - f) / (right - centre).",
        "mels = np.linspace(2595 * np.log10(1 + fmin / 700), 2595 * np.log10(1 + fmax / 700), n_mels + 2)\n"
        "edges = 700 * (10 ** (mels / 2595) - 1)\n"
        "freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft\n"
        "weights = np.zeros((n_mels, len(freqs)))\n"
        "for m in range(n_mels):\n"
        "    rising = (freqs - edges[m]) / (edges[m + 1] - edges[m])\n"
        "    falling = (edges[m + 2] - freqs) / (edges[m + 2] - edges[m + 1])\n"
        "    weights[m] = np.maximum(0, np.minimum(rising, falling))\n"
        "return weights",
    ],
    explanation=(
        "The mel scale $m = 2595\\log_{10}(1 + f/700)$ is close to linear below about 1 kHz and "
        "logarithmic above, like the ear's resolution. Triangles evenly spaced on it are narrow at low "
        "frequencies and wide at high ones; neighbouring triangles overlap so that every frequency between "
        "the first and last centre is covered by weights summing to 1."
    ),
))


# ---------------------------------------------------------------------------- 2.3.3.2 Griffin–Lim


def _gl_reference(magnitude, n_iter, hop_length):
    import librosa

    return librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=hop_length, momentum=0.0, init=None)


def _gl_variant(kind: str):
    def wrong(case: Case):
        import librosa

        magnitude, n_iter, hop = case.args
        if kind == "fewer":
            return _gl_reference(magnitude, n_iter - 1, hop)
        if kind == "momentum":  # librosa's default, the "fast" Griffin-Lim of Perraudin et al. (2013)
            return librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=hop, momentum=0.99, init=None)
        if kind == "keep_rebuilt":  # never restores the target magnitudes
            spec = magnitude.astype(np.complex64)
            for _ in range(n_iter):
                spec = librosa.stft(librosa.istft(spec, hop_length=hop), n_fft=2 * (magnitude.shape[0] - 1),
                                    hop_length=hop)
            return librosa.istft(spec, hop_length=hop)
        raise ValueError(kind)

    return wrong


def _gl_cases(gen: torch.Generator, device) -> list[Case]:
    def magnitudes(freqs: int, frames: int) -> np.ndarray:
        return (torch.rand(freqs, frames, generator=gen) ** 2).numpy().astype(np.float32)

    return [
        Case("n_fft=64 (33 bins), 12 frames, hop 16, 5 iterations", (magnitudes(33, 12), 5, 16)),
        Case("n_fft=128 (65 bins), 8 frames, hop 32, 3 iterations", (magnitudes(65, 8), 3, 32)),
        Case("n_fft=32 (17 bins), 20 frames, hop 8, 1 iteration", (magnitudes(17, 20), 1, 8)),
    ]


register(Exercise(
    id="2.3.3.2",
    title="Griffin–Lim: phases for a magnitude spectrogram",
    function="griffin_lim",
    reference=_gl_reference,
    cases=_gl_cases,
    variants=[
        Variant("one iteration too few: run the loop n_iter times, then invert once more with the final phases",
                _gl_variant("fewer")),
        Variant("you never put the target magnitudes back, so nothing changes after the first round (this is "
                "the inverse STFT of the magnitudes with zero phase): each round keeps the phases of the rebuilt "
                "STFT and restores the given magnitude, magnitude * rebuilt / |rebuilt|", _gl_variant("keep_rebuilt")),
        Variant("your phases take a step past the new estimate (momentum, as in librosa.griffinlim's default "
                "momentum=0.99): plain Griffin–Lim keeps exactly the phases of the rebuilt STFT each round",
                _gl_variant("momentum")),
    ],
    hints=[
        "Start from phase 0 (the spectrogram is the magnitude itself, as complex numbers). Each round: "
        "invert with librosa.istft, analyse the result again with librosa.stft, keep only the phases of "
        "that and put the given magnitudes back.",
        "n_fft = 2 * (magnitude.shape[0] - 1). The new spectrogram is magnitude * rebuilt / (|rebuilt| + "
        "tiny), where tiny avoids 0/0. After n_iter rounds, return librosa.istft of the last spectrogram.",
        "n_fft = 2 * (magnitude.shape[0] - 1)\n"
        "spec = magnitude.astype(np.complex64)\n"
        "for _ in range(n_iter):\n"
        "    audio = librosa.istft(spec, hop_length=hop_length, n_fft=n_fft)\n"
        "    rebuilt = librosa.stft(audio, n_fft=n_fft, hop_length=hop_length)\n"
        "    spec = magnitude * rebuilt / (np.abs(rebuilt) + np.finfo(np.float32).tiny)\n"
        "return librosa.istft(spec, hop_length=hop_length, n_fft=n_fft)",
    ],
    explanation=(
        "A magnitude spectrogram has no phases, and most arrays of complex numbers are the STFT of no "
        "signal at all: neighbouring windows overlap, so they must agree. Griffin and Lim (1984) alternate "
        "two projections: onto the signals (inverse STFT, then STFT) and onto the given magnitudes "
        "(keep the phases, restore the magnitudes). The distance between the two sets never grows, and a "
        "few dozen rounds give an intelligible waveform."
    ),
    atol=1e-4,
    rtol=1e-3,
))


# ---------------------------------------------------------------------------- 2.3.3.3 greedy CTC decoding


def _ctc_reference(log_probs, blank):
    labels = ctc_greedy_decode(log_probs[None], blank=blank)[0]
    return labels, float(log_probs.max(-1).values.sum())


def _ctc_variant(kind: str):
    def wrong(case: Case):
        log_probs, blank = case.args
        best = log_probs.argmax(-1).tolist()
        score = float(log_probs.max(-1).values.sum())
        if kind == "no_merge":
            return [b for b in best if b != blank], score
        if kind == "blanks_first":
            kept = [b for b in best if b != blank]
            return [b for i, b in enumerate(kept) if i == 0 or b != kept[i - 1]], score
        if kind == "keep_blanks":
            return [b for i, b in enumerate(best) if i == 0 or b != best[i - 1]], score
        if kind == "mean_score":
            return _ctc_reference(log_probs, blank)[0], float(log_probs.max(-1).values.mean())
        if kind == "probability":
            return _ctc_reference(log_probs, blank)[0], float(log_probs.max(-1).values.exp().prod())
        raise ValueError(kind)

    return wrong


def _path_log_probs(path: list[int], classes: int, gen: torch.Generator) -> torch.Tensor:
    """Log-probabilities ``(T, C)`` whose best label per frame is ``path``."""
    scores = torch.randn(len(path), classes, generator=gen)
    scores[torch.arange(len(path)), torch.tensor(path)] += 8.0
    return scores.log_softmax(-1)


def _ctc_cases(gen: torch.Generator, device) -> list[Case]:
    b = 10
    paths = [
        ("a repeated word needs a blank between: four _ four two two _ seven", [4, b, 4, 2, 2, b, 7]),
        ("blanks only", [b, b, b, b]),
        ("no blanks: repeats merge", [3, 3, 3, 1, 1]),
        ("starts and ends with blanks", [b, 9, 9, b, b, 0, b]),
    ]
    labels = torch.randint(0, 11, (30,), generator=gen).tolist()
    paths.append(("30 random frames", labels))
    cases = [Case(name, (_path_log_probs(p, 11, gen).to(device), b)) for name, p in paths]
    cases.append(Case("blank is label 0 here, five classes", (_path_log_probs([0, 3, 3, 0, 3, 1, 0], 5, gen).to(device), 0)))
    return cases


register(Exercise(
    id="2.3.3.3",
    title="Reading a clip: greedy CTC decoding",
    function="ctc_greedy",
    reference=_ctc_reference,
    cases=_ctc_cases,
    variants=[
        Variant("repeated labels must be merged first: four four _ four reads 'four four', not three fours",
                _ctc_variant("no_merge")),
        Variant("you dropped the blanks before merging repeats, so 'four _ four' became one four: merge "
                "neighbouring repeats first, then drop the blanks", _ctc_variant("blanks_first")),
        Variant("the blank label is still in the output: drop it after merging repeats", _ctc_variant("keep_blanks")),
        Variant("the path's log-probability is the *sum* of the chosen frames' log-probabilities, not their mean",
                _ctc_variant("mean_score")),
        Variant("return the log-probability of the path (the sum of log-probabilities), not the probability",
                _ctc_variant("probability")),
    ],
    hints=[
        "Take the most likely label of every frame, merge runs of the same label into one, then drop the "
        "blank label. The path's log-probability adds up the log-probability of each frame's chosen label.",
        "scores, best = log_probs.max(-1) gives both per frame; keep best[i] when i == 0 or "
        "best[i] != best[i - 1], and when it is not the blank. Return (list of Python ints, float(scores.sum())).",
        "scores, best = log_probs.max(-1)\n"
        "best = best.tolist()\n"
        "labels = [b for i, b in enumerate(best) if (i == 0 or b != best[i - 1]) and b != blank]\n"
        "return labels, float(scores.sum())",
    ],
    explanation=(
        "CTC gives a label per frame, far more frames than words, and the blank stands for 'nothing new "
        "here'. A word that lasts several frames repeats its label; merging runs collapses it to one, and "
        "the blank between two runs of the same label is what lets a text say the same word twice. "
        "Merging before dropping blanks is what makes 'four _ four' two words. The best path's "
        "log-probability is a lower bound on the log-probability CTC gives the text it reads (which sums "
        "over every path that collapses to it); a low value flags a clip the recogniser is unsure of."
    ),
))
