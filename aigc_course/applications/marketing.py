"""Product copy for the Nimbus kettles, and a checker for claims they do not support (6.3, 营销创作).

The Nimbus kettle of 6.1 comes in six models (:data:`PRODUCTS`), each with a capacity and a few
of seven features. The training text is written by code from these specs: a blurb names the
product, states its capacity and two of its features in one of two phrasings each, and ends
with a tagline, e.g. ``"Nimbus Mini : holds 1.0 litres , a quiet boil and keeps water warm .
boil better !"`` (the course's own text, MIT licence). A GPT trained on it writes new blurbs
when prompted with a product's name.

A blurb **hallucinates** when it claims a feature the product does not have or a wrong
capacity: :func:`check_blurb` finds every claim (:func:`claims`, phrase matching) and compares
it with the product's spec.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import torch

from aigc_course.applications.words import BOS, Vocabulary

FEATURE_PHRASES = {
    "app": ("app control", "works with the Nimbus app"),
    "keep_warm": ("keeps water warm", "a keep warm mode"),
    "dial": ("a temperature dial", "pick your temperature"),
    "dry": ("boil dry protection", "stops when dry"),
    "quiet": ("a quiet boil", "whisper quiet"),
    "glass": ("a glass body", "watch it boil"),
    "travel": ("folds for travel", "fits in a bag"),
}
# name: (capacity in litres, features)
PRODUCTS = {
    "Nimbus Classic": ("1.7", frozenset({"app", "keep_warm", "dial", "dry"})),
    "Nimbus Mini": ("1.0", frozenset({"keep_warm", "dry", "quiet"})),
    "Nimbus Go": ("0.5", frozenset({"travel", "dry"})),
    "Nimbus Glass": ("1.5", frozenset({"glass", "dial", "quiet"})),
    "Nimbus Smart": ("1.7", frozenset({"app", "dial", "keep_warm"})),
    "Nimbus Pro": ("2.0", frozenset({"dial", "dry", "quiet", "keep_warm"})),
}
CAPACITY_PHRASES = ("holds {} litres", "{} litres of water")
TAGLINES = ("tea time made easy", "made for your kitchen", "boil better", "simply good tea")


def _check_name(name: str) -> str:
    if name not in PRODUCTS:
        raise ValueError(f"name must be one of {list(PRODUCTS)}, got {name!r}")
    return name


def blurb(name: str, rng: random.Random) -> str:
    """One blurb for product ``name``: its capacity and two of its features, in random order."""
    capacity, features = PRODUCTS[_check_name(name)]
    parts = [rng.choice(CAPACITY_PHRASES).format(capacity)]
    parts += [rng.choice(FEATURE_PHRASES[f]) for f in rng.sample(sorted(features), 2)]
    rng.shuffle(parts)
    return f"{name} : {parts[0]} , {parts[1]} and {parts[2]} . {rng.choice(TAGLINES)} !"


def blurbs(n: int, seed: int = 0) -> list[str]:
    """``n`` training blurbs, products drawn uniformly."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    rng = random.Random(seed)
    return [blurb(rng.choice(list(PRODUCTS)), rng) for _ in range(n)]


def vocabulary() -> Vocabulary:
    """Every word a blurb can use."""
    texts = [*PRODUCTS, *TAGLINES, *(p.format(c) for p in CAPACITY_PHRASES for c, _ in PRODUCTS.values()),
             *(p for ps in FEATURE_PHRASES.values() for p in ps), ": , and . !"]
    return Vocabulary(w for t in texts for w in t.split())


@torch.no_grad()
def write_blurbs(model, vocab: Vocabulary, names: list[str], temperature: float = 1.0, max_words: int = 28,
                 generator: torch.Generator | None = None) -> list[str]:
    """Prompt a course GPT with ``"<bos> {name} :"`` for each name and sample the rest at ``temperature``."""
    for name in names:
        _check_name(name)
    prompts = {len(vocab.encode(n)) for n in names}
    if len(prompts) != 1:
        raise ValueError("names must all be of one length in words (the prompts are batched)")
    device = next(model.parameters()).device
    prompt = torch.tensor([[vocab.stoi[BOS]] + vocab.encode(f"{n} :") for n in names], device=device)
    out = model.generate(prompt, max_words, temperature=temperature, generator=generator)
    return [vocab.decode(row) for row in out.tolist()]


def claims(text: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """``(features, capacities)`` a blurb states: the features whose phrases it contains and every
    capacity it gives in litres."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    padded = f" {text} "
    features = frozenset(f for f, phrases in FEATURE_PHRASES.items() if any(f" {p} " in padded for p in phrases))
    return features, tuple(re.findall(r"(\d\.\d) litres", text))


@dataclass(frozen=True)
class BlurbCheck:
    """A blurb checked against product ``name``: ``unsupported`` features it claims and
    ``wrong_capacities`` it states (both empty = no hallucination)."""

    text: str
    name: str
    unsupported: tuple[str, ...]
    wrong_capacities: tuple[str, ...]

    @property
    def hallucinated(self) -> bool:
        return bool(self.unsupported or self.wrong_capacities)


def check_blurb(text: str, name: str) -> BlurbCheck:
    """Compare every claim of ``text`` with the spec of product ``name``."""
    capacity, features = PRODUCTS[_check_name(name)]
    stated, capacities = claims(text)
    return BlurbCheck(text, name, tuple(sorted(stated - features)), tuple(c for c in capacities if c != capacity))


def hallucination_rate(checks: list[BlurbCheck]) -> float:
    """The share of checked blurbs with at least one unsupported claim."""
    if not checks:
        raise ValueError("checks must not be empty")
    return sum(c.hallucinated for c in checks) / len(checks)
