"""Data sets the course uses, all local: nothing is downloaded.

* :func:`python_corpus` -- text read from the local Python standard library's source
  (Chapters 1 and 3.1), split by file into train / validation / test.
* :func:`ring_gaussians`, :func:`grid_gaussians` -- the 2-D mixtures of the GAN
  mode-collapse literature (VEEGAN, PacGAN); :func:`ring_log_density` is the ring's exact density.
* :func:`load_digits` -- scikit-learn's 8x8 handwritten digits, scaled to ``[0, 1]``
  (ink / 16), with a fixed stratified train/test split.
"""

from __future__ import annotations

import hashlib
import math
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aigc_course._checks import check_int, check_number
from aigc_course.tokenizers import as_token_ids

# --------------------------------------------------------------------------- text corpus

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


# --------------------------------------------------------------------------- 2-D mixtures


def ring_centers(num_modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """Centres of the ring: ``radius * (cos 2πk/K, sin 2πk/K)`` for ``k = 0..K-1``. ``(K, 2)``."""
    num_modes = check_int(num_modes, "num_modes", low=1)
    radius = check_number(radius, "radius", low=0, low_open=True)
    k = torch.arange(num_modes, dtype=torch.float64)
    angles = 2 * math.pi * k / num_modes
    return torch.stack([radius * torch.cos(angles), radius * torch.sin(angles)], dim=1).float()


def grid_centers(values: tuple[float, ...] = (-4.0, -2.0, 0.0, 2.0, 4.0)) -> torch.Tensor:
    """Centres of the grid: every pair from ``values`` (default 5x5). ``(len(values)**2, 2)``."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) == 0:
        raise ValueError(f"values must be a non-empty sequence of numbers, got {values!r}")
    values = [check_number(v, "values[...]") for v in values]
    v = torch.tensor(values, dtype=torch.float32)
    xx, yy = torch.meshgrid(v, v, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)


def _mixture(n: int, centers: torch.Tensor, std: float, generator: torch.Generator | None):
    n = check_int(n, "n", low=1)
    std = check_number(std, "std", low=0)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    idx = torch.randint(len(centers), (n,), generator=generator)
    noise = torch.randn(n, 2, generator=generator) * std
    return centers[idx] + noise, idx


def ring_gaussians(n: int, std: float = 0.02, generator: torch.Generator | None = None, return_modes: bool = False):
    """``n`` points from 8 equal Gaussians on a circle of radius 2, std 0.02. ``(n, 2)``."""
    points, idx = _mixture(n, ring_centers(), std, generator)
    return (points, idx) if return_modes else points


def ring_log_density(x: torch.Tensor, std: float = 0.02) -> torch.Tensor:
    """Exact ``log p(x)`` of the ring mixture (8 equal isotropic Gaussians), ``(n, 2) -> (n,)``.

    The best test log-density any model of :func:`ring_gaussians` can reach (in nats).
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != 2 or not x.is_floating_point():
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a float tensor of shape (n, 2), got {got}")
    std = check_number(std, "std", low=0, low_open=True)
    d2 = torch.cdist(x.double(), ring_centers().double().to(x.device)) ** 2
    log_component = -d2 / (2 * std**2) - math.log(2 * math.pi * std**2)
    return (torch.logsumexp(log_component, dim=1) - math.log(len(ring_centers()))).to(x.dtype)


def grid_gaussians(n: int, std: float = 0.05, generator: torch.Generator | None = None, return_modes: bool = False):
    """``n`` points from 25 equal Gaussians centred on {-4,-2,0,2,4}², std 0.05. ``(n, 2)``."""
    points, idx = _mixture(n, grid_centers(), std, generator)
    return (points, idx) if return_modes else points


# --------------------------------------------------------------------------- digits

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass(frozen=True)
class DigitsSplit:
    """scikit-learn's digits as tensors: images ``(N, 1, 8, 8)`` in ``[0, 1]``, labels ``(N,)``."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits(test_size: float = 0.2, seed: int = 0) -> DigitsSplit:
    """scikit-learn's 1,797 digits, ink / 16, split stratified with a fixed seed.

    The default split (20 % test, seed 0) is the one every chapter and checkpoint uses:
    1,437 training and 360 test images.
    """
    test_size = check_number(test_size, "test_size", low=0, high=1, low_open=True, high_open=True)
    seed = check_int(seed, "seed", low=0, high=2**32 - 1)
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=test_size, random_state=seed, stratify=labels
    )
    return DigitsSplit(torch.from_numpy(x_tr), torch.from_numpy(y_tr), torch.from_numpy(x_te), torch.from_numpy(y_te))
