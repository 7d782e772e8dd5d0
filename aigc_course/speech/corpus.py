"""Spoken digit strings: the text domain and the "real" clips, synthesised by eSpeak NG.

**Texts.** A text is one to four digits read out as words, ``"four two seven"``: ten words,
sixteen characters (:data:`ALPHABET`). Ten of the hundred word pairs never stand next to each
other in training (:data:`HELD_OUT_PAIRS`, the pairs ``d, d+3 mod 10`` such as "one four"); every
text that contains one is *held out*, so a model is tested on transitions between words it has
never heard.

**Clips.** The "real" speech comes from eSpeak NG (Debian package ``espeak-ng``, GPL-3.0-or-later),
a formant synthesiser that reads English text aloud. It runs when a corpus is prepared or a page
needs real clips; nothing is downloaded and the shipped checkpoints do not need it. Each clip is
resampled to :data:`SAMPLE_RATE`, trimmed of leading and trailing silence (plus a short margin)
and scaled to a peak of 0.9. A :class:`Speaker` (voice, speed in words per minute, pitch 0-99)
says how a clip is read: the text-to-speech corpus uses one voice with varied speed and pitch
(:data:`TTS_SPEAKERS`), the recogniser's corpus many voices (:data:`JUDGE_SPEAKERS`).
"""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: Every character a text may contain: the space and the letters of the ten digit words.
ALPHABET = " " + "".join(sorted(set("".join(DIGIT_WORDS))))
MAX_DIGITS = 4
#: Word pairs ``(a, b)`` that never follow each other in a training text: ``b = a + 3 mod 10``.
HELD_OUT_PAIRS = frozenset((d, (d + 3) % 10) for d in range(10))
SAMPLE_RATE = 16_000
ESPEAK = "espeak-ng"
_ESPEAK_RATE = 22_050  # what espeak-ng writes
_MARGIN = 0.05  # seconds of silence kept before and after the speech
_SPLITS = ("train", "held_out")


class EspeakNotFoundError(RuntimeError):
    """The ``espeak-ng`` program, which makes the real clips, is not installed."""


# --------------------------------------------------------------------------- texts


def digits_to_text(digits: Sequence[int]) -> str:
    """``[4, 2, 7]`` -> ``"four two seven"``."""
    if not digits or any(isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 9 for d in digits):
        raise ValueError(f"digits must be a non-empty sequence of ints 0..9, got {digits!r}")
    return " ".join(DIGIT_WORDS[d] for d in digits)


def text_to_digits(text: str) -> list[int]:
    """``"four two seven"`` -> ``[4, 2, 7]``; a word that is not a digit is a ``ValueError``."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a str of digit words, got {type(text).__name__}")
    words = text.split()
    unknown = [w for w in words if w not in DIGIT_WORDS]
    if not words or unknown:
        raise ValueError(f"text must be digit words such as 'four two seven', got {text!r}")
    return [DIGIT_WORDS.index(w) for w in words]


def is_held_out(digits: Sequence[int]) -> bool:
    """True when two neighbouring digits form one of :data:`HELD_OUT_PAIRS`."""
    return any((a, b) in HELD_OUT_PAIRS for a, b in zip(digits, digits[1:], strict=False))


def split_of(text: str) -> str:
    """``"train"`` or ``"held_out"`` for a text of digit words."""
    return "held_out" if is_held_out(text_to_digits(text)) else "train"


def digit_texts(n: int, *, split: str = "train", seed: int = 0, min_digits: int = 1,
                max_digits: int = MAX_DIGITS) -> list[str]:
    """``n`` random texts of ``min_digits..max_digits`` digit words from ``split``.

    Lengths are drawn uniformly, then digits uniformly until the text falls in the split; the
    same ``seed`` gives the same texts. Single digits contain no pair, so they are all
    ``"train"``: ``split="held_out"`` needs ``max_digits >= 2``.
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    if not (isinstance(min_digits, int) and isinstance(max_digits, int) and 1 <= min_digits <= max_digits <= MAX_DIGITS):
        raise ValueError(f"min_digits and max_digits must satisfy 1 <= min_digits <= max_digits <= {MAX_DIGITS}, "
                         f"got {min_digits!r} and {max_digits!r}")
    lengths = range(max(min_digits, 2) if split == "held_out" else min_digits, max_digits + 1)
    if not lengths:
        raise ValueError("split='held_out' needs max_digits >= 2 (a single digit has no neighbour)")
    rng = random.Random(seed)
    texts = []
    while len(texts) < n:
        digits = [rng.randrange(10) for _ in range(rng.choice(lengths))]
        if is_held_out(digits) == (split == "held_out"):
            texts.append(digits_to_text(digits))
    return texts


def check_text(text, name: str = "text") -> str:
    """``text`` lower-cased with runs of spaces collapsed, if every character is in :data:`ALPHABET`.

    A non-string, an empty text or a character outside the alphabet is a ``ValueError``
    naming ``name``.
    """
    if not isinstance(text, str):
        raise ValueError(f"{name} must be a str (or a list of str), got {type(text).__name__}")
    clean = " ".join(text.lower().split())
    if not clean:
        raise ValueError(f"{name} must not be empty; write digits as words, e.g. 'four two seven'")
    outside = sorted(set(clean) - set(ALPHABET))
    if outside:
        raise ValueError(f"{name} {text!r} has characters outside the vocabulary: {outside}; the model reads "
                         f"only the letters of the digit words and spaces ({ALPHABET.strip()!r}), "
                         "e.g. 'four two seven'")
    return clean


def check_words(text, name: str = "text", max_words: int = MAX_DIGITS) -> str:
    """:func:`check_text`, and then every word must be a digit word and there at most ``max_words`` of them."""
    clean = check_text(text, name)
    words = clean.split()
    unknown = [w for w in words if w not in DIGIT_WORDS]
    if unknown:
        raise ValueError(f"{name} {text!r} has words outside the vocabulary: {unknown}; the model speaks the "
                         f"ten digit words ({' '.join(DIGIT_WORDS)})")
    if len(words) > max_words:
        raise ValueError(f"{name} {text!r} has {len(words)} words; the model reads at most {max_words}")
    return clean


# --------------------------------------------------------------------------- speakers


@dataclass(frozen=True)
class Speaker:
    """How eSpeak NG reads a clip: a voice name, the speed in words per minute, the pitch (0-99)."""

    voice: str = "en-us"
    speed: int = 170
    pitch: int = 50

    def arguments(self) -> list[str]:
        return ["-v", self.voice, "-s", str(self.speed), "-p", str(self.pitch)]


#: The text-to-speech corpus: one American English voice, speed and pitch varied per clip.
TTS_SPEAKERS = {"voices": ("en-us",), "speed": (150, 190), "pitch": (40, 60)}
#: The recogniser's corpus: seventeen voices and variants, wider speeds and pitches.
JUDGE_SPEAKERS = {
    "voices": ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029",
               "en-us-nyc", "en-us+f2", "en-us+f4", "en-us+m3", "en-us+m7", "en-gb+f1", "en-gb+f3", "en-gb+m2",
               "en-us+klatt", "en-us+klatt4"),
    "speed": (130, 210),
    "pitch": (25, 75),
}


def random_speakers(n: int, recipe: dict, seed: int = 0) -> list[Speaker]:
    """``n`` speakers drawn from a recipe such as :data:`TTS_SPEAKERS` (voice, then speed and pitch uniformly)."""
    rng = random.Random(seed)
    return [Speaker(rng.choice(recipe["voices"]), rng.randint(*recipe["speed"]), rng.randint(*recipe["pitch"]))
            for _ in range(n)]


# --------------------------------------------------------------------------- synthesis


def espeak_available() -> bool:
    """True when the ``espeak-ng`` program is on the ``PATH``."""
    return shutil.which(ESPEAK) is not None


def _require_espeak() -> str:
    path = shutil.which(ESPEAK)
    if path is None:
        raise EspeakNotFoundError(
            "the real speech clips are made by the eSpeak NG synthesiser, which is not installed: "
            "install the Debian/Ubuntu package with `sudo apt-get install espeak-ng` (macOS: "
            "`brew install espeak-ng`). The shipped text-to-speech checkpoint does not need it."
        )
    return path


def _wav_samples(data: bytes) -> np.ndarray:
    """The 16-bit mono PCM samples of espeak-ng's streamed WAV (its header sizes are placeholders)."""
    start = data.find(b"data")
    if data[:4] != b"RIFF" or start < 0:
        raise RuntimeError(f"{ESPEAK} wrote {len(data)} bytes that are not a WAV file")
    body = data[start + 8 :]
    return np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0


def _clean(samples: np.ndarray) -> np.ndarray:
    """Resample to SAMPLE_RATE, trim the silence around the speech (keeping a margin), peak 0.9."""
    import librosa

    audio = librosa.resample(samples, orig_sr=_ESPEAK_RATE, target_sr=SAMPLE_RATE)
    _, (start, stop) = librosa.effects.trim(audio, top_db=40, frame_length=512, hop_length=128)
    margin = int(_MARGIN * SAMPLE_RATE)
    audio = audio[max(0, start - margin) : stop + margin]
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak == 0.0:
        raise RuntimeError(f"{ESPEAK} produced silence")
    return (0.9 / peak * audio).astype(np.float32)


def synthesize(text: str, speaker: Speaker = Speaker()) -> np.ndarray:
    """One clip of ``text`` read by ``speaker``: float32 samples ``(samples,)`` at :data:`SAMPLE_RATE`, peak 0.9."""
    program = _require_espeak()
    text = check_text(text)
    result = subprocess.run([program, *speaker.arguments(), "--stdout", text], capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{ESPEAK} failed for {speaker}: {result.stderr.decode(errors='replace').strip()}")
    return _clean(_wav_samples(result.stdout))


def synthesize_many(texts: Sequence[str], speakers: Sequence[Speaker] | Speaker = Speaker(),
                    workers: int = 8) -> list[np.ndarray]:
    """:func:`synthesize` for each text (with the matching speaker); ``workers`` programs run at once.

    eSpeak NG spends most of a short clip's wall time starting up, so a few processes in
    parallel finish far sooner than one after another, on any number of cores.
    """
    if isinstance(speakers, Speaker):
        speakers = [speakers] * len(texts)
    if len(speakers) != len(texts):
        raise ValueError(f"speakers must be one Speaker or one per text ({len(texts)}), got {len(speakers)}")
    _require_espeak()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(synthesize, texts, speakers))
