"""Text read from the local Python standard library's source (Chapters 1 and 3.1).

:func:`python_corpus` splits the ``.py`` files into train / validation / test by a hash of each
file's path; :func:`normalize_text` maps text to :data:`CORPUS_ALPHABET` (printable ASCII and
newline), and :func:`encode_chars` / :func:`decode_chars` turn it into ids and back.
"""

from __future__ import annotations

import hashlib
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import torch

from aigc_course._checks import check_int, check_number
from aigc_course.tokenizers import as_token_ids

# Folders of the standard library left out: test suites are huge and repetitive,
# site-packages holds third-party code, and encodings/ and pydoc_data/ are mostly
# machine-generated tables rather than code a person wrote.
_SKIP_PARTS = {"test", "tests", "idle_test", "site-packages", "__pycache__", "_vendor", "encodings", "pydoc_data"}


# The corpus alphabet after normalize_text: newline plus the 95 printable ASCII characters.
CORPUS_ALPHABET = "\n" + "".join(chr(c) for c in range(32, 127))
_CHAR_TO_ID = {ch: i for i, ch in enumerate(CORPUS_ALPHABET)}


def encode_chars(text: str) -> torch.Tensor:
    """Normalised corpus text -> ids in ``[0, 96)`` over :data:`CORPUS_ALPHABET`. ``(len(text),)``."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    try:
        return torch.tensor([_CHAR_TO_ID[ch] for ch in text], dtype=torch.long)
    except KeyError as err:
        raise ValueError(f"text holds the character {err.args[0]!r}, outside the corpus alphabet; "
                         "pass the text through normalize_text first") from err


def decode_chars(ids) -> str:
    """Inverse of :func:`encode_chars`: integer ids in ``[0, 96)`` (float ids are a ``ValueError``)."""
    return "".join(CORPUS_ALPHABET[i] for i in as_token_ids(ids, len(CORPUS_ALPHABET)))


def stdlib_dir() -> Path:
    """Folder of the running interpreter's standard library source."""
    return Path(sysconfig.get_paths()["stdlib"])


def normalize_text(text: str) -> str:
    """Map text to the corpus alphabet: printable ASCII plus newline.

    Tabs become four spaces, Windows newlines become ``\\n``, and every other
    character outside the alphabet becomes ``?``, so that character-level models
    of different families are scored on exactly the same symbols.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    return "".join(ch if (" " <= ch <= "~" or ch == "\n") else "?" for ch in text)


def read_text_file(path: Path | str) -> str:
    """Read a UTF-8 text file, with an error naming the path when it cannot be used."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ValueError(f"corpus file {path} cannot be read: {err.strerror or err}") from err
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"corpus file {path} is not UTF-8 text: {err}") from err
    if not text.strip():
        raise ValueError(f"corpus file {path} is empty; expected some text to learn from")
    return text


def _split_of(relative_path: str, valid_fraction: float, test_fraction: float) -> str:
    # A hash of the path, not a random draw: the split is the same on every machine
    # and stays put when files are added or removed.
    h = int(hashlib.sha256(relative_path.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if h < test_fraction:
        return "test"
    if h < test_fraction + valid_fraction:
        return "valid"
    return "train"


@dataclass(frozen=True)
class TextCorpus:
    """A corpus split by file. ``files`` maps each split to the files it came from."""

    train: str
    valid: str
    test: str
    files: dict[str, list[str]]
    source: str

    def split(self, name: str) -> str:
        if not isinstance(name, str) or name not in ("train", "valid", "test"):
            raise ValueError(f"split must be 'train', 'valid' or 'test', got {name!r}")
        return getattr(self, name)

    def describe(self) -> str:
        return (
            f"{self.source}: train {len(self.train):,} chars ({len(self.files['train'])} files), "
            f"valid {len(self.valid):,} ({len(self.files['valid'])}), "
            f"test {len(self.test):,} ({len(self.files['test'])})"
        )


def python_corpus(
    max_chars: int | None = 2_000_000,
    root: Path | str | None = None,
    valid_fraction: float = 0.05,
    test_fraction: float = 0.05,
) -> TextCorpus:
    """The Python standard library's ``.py`` source as a normalised text corpus.

    Files are split into train / valid / test by a hash of their relative path, so no
    file straddles two splits. ``max_chars`` caps each split at ``max_chars`` (train)
    and ``max_chars * fraction / (1 - valid - test)`` (held-out), taking files in
    sorted order; ``None`` keeps everything. ``root`` points at another folder of
    ``.py`` files, or a single text file (then split by position: 90/5/5).
    """
    if max_chars is not None:
        max_chars = check_int(max_chars, "max_chars (or None)", low=1)
    valid_fraction = check_number(valid_fraction, "valid_fraction", low=0, high=1, high_open=True)
    test_fraction = check_number(test_fraction, "test_fraction", low=0, high=1, low_open=True, high_open=True)
    if valid_fraction + test_fraction >= 1:
        raise ValueError(f"valid_fraction + test_fraction must leave some training text (< 1), "
                         f"got {valid_fraction} + {test_fraction}")
    root = stdlib_dir() if root is None else Path(root)
    if root.is_file():
        text = normalize_text(read_text_file(root))
        n = len(text)
        a, b = int(n * (1 - valid_fraction - test_fraction)), int(n * (1 - test_fraction))
        return TextCorpus(text[:a], text[a:b], text[b:], {"train": [root.name], "valid": [root.name], "test": [root.name]}, str(root))
    if not root.is_dir():
        raise ValueError(f"corpus root {root} does not exist; expected a folder of .py files or a text file")
    train_share = 1.0 - valid_fraction - test_fraction
    caps = {
        "train": max_chars,
        "valid": None if max_chars is None else int(max_chars * valid_fraction / train_share),
        "test": None if max_chars is None else int(max_chars * test_fraction / train_share),
    }
    parts: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    files: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    sizes = {"train": 0, "valid": 0, "test": 0}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if _SKIP_PARTS.intersection(rel.split("/")[:-1]):
            continue
        split = _split_of(rel, valid_fraction, test_fraction)
        cap = caps[split]
        if cap is not None and sizes[split] >= cap:
            continue
        try:
            text = normalize_text(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            continue
        if cap is not None:
            text = text[: cap - sizes[split]]
        parts[split].append(text)
        files[split].append(rel)
        sizes[split] += len(text)
    if not sizes["train"] or not sizes["test"]:
        raise ValueError(f"corpus root {root} holds too little readable .py text to split")
    return TextCorpus(
        "".join(parts["train"]), "".join(parts["valid"]), "".join(parts["test"]), files, str(root)
    )
