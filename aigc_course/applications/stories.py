"""Short stories from a prompt, and a checker for what can be checked in them (6.4, 娱乐创作).

The training stories are written by code from a small grammar (the course's own text, MIT
licence): a **hero** (a name), a **place**, a **goal** (an object to find), zero to two
**problems** on the way and an **ending** that brings the goal back -- three to five sentences,
each in one of several phrasings, then ``"the end ."``; e.g. ``"one day Mira went to the forest .
Mira wanted to find the lantern . but a storm blocked the way . at last Mira found the lantern .
the end ."`` The grammar can write millions of different stories, so a model that copies a
training story can be told from one that composes a new one.

A prompt fixes the hero, the place and the goal (:class:`StoryPrompt`,
``"hero : Mira place : forest goal : lantern story :"``); a course GPT writes the rest, one word
per token. One place per hero (:data:`HELD_OUT_PAIRS`) never goes with that hero in training.

:func:`check_story` parses a story back and reports four things a program can decide: are the
prompt's **constraints kept** (hero, place and goal named), is the story **consistent** (one
hero name, one place, one object from start to ending), is it **well formed** (every sentence
is one the grammar can write) and does it **end** (``"the end ."`` once, as its last words).
**Novelty** is measured against the training stories with
:class:`~aigc_course.metrics.memorisation.NGramIndex` (:func:`novelty`), **diversity** with
distinct n-grams across samples (:func:`distinct_n`). None of these says whether a story is good.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import NamedTuple

import torch

from aigc_course.applications.words import BOS, EOS, Vocabulary, shifted_ids
from aigc_course.gpt import GPT, GPTConfig
from aigc_course.metrics.memorisation import NGramIndex
from aigc_course.training import History, fit, make_adamw, warmup_cosine_scheduler

HEROES = ("Mira", "Tomas", "Ana", "Leo", "Suki", "Omar", "Ivy", "Finn")
PLACES = ("forest", "harbour", "desert", "mountain", "village", "castle", "island", "cave")
GOALS = ("lantern", "key", "map", "crown", "feather", "compass", "flute", "seed")
OBSTACLES = ("storm", "river", "wolf", "fog", "giant", "wall")
HELPERS = ("an old owl", "a kind fox", "a tired sailor", "a little crab", "a wise goat")
# each hero has one place it is never seen with in training: the held-out prompts
HELD_OUT_PAIRS = frozenset(zip(HEROES, PLACES, strict=True))
SPLITS = ("train", "held_out")

OPENINGS = (
    "once {hero} lived near the {place} .",
    "one day {hero} went to the {place} .",
    "in the {place} lived a child called {hero} .",
)
GOAL_LINES = (
    "{hero} wanted to find the {goal} .",
    "{hero} had lost a {goal} .",
    "a {goal} was hidden in the {place} .",
)
PROBLEMS = (
    "but a {obstacle} blocked the way .",
    "the path was long and {hero} grew tired .",
    "then {helper} showed {hero} a secret path .",
    "{hero} feared the {obstacle} but went on .",
    "night fell on the {place} .",
)
ENDINGS = (
    "at last {hero} found the {goal} .",
    "{hero} brought the {goal} home from the {place} .",
    "{hero} held up the {goal} and smiled .",
)
THE_END = "the end ."


@dataclass(frozen=True)
class StoryPrompt:
    """What a story must contain: a ``hero`` from :data:`HEROES`, a ``place`` from :data:`PLACES`
    and a ``goal`` from :data:`GOALS`."""

    hero: str
    place: str
    goal: str

    def __post_init__(self):
        for name, allowed in (("hero", HEROES), ("place", PLACES), ("goal", GOALS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")

    @property
    def text(self) -> str:
        return f"hero : {self.hero} place : {self.place} goal : {self.goal} story :"

    @property
    def held_out(self) -> bool:
        return (self.hero, self.place) in HELD_OUT_PAIRS


PROMPT_WORDS = len(StoryPrompt(HEROES[0], PLACES[0], GOALS[0]).text.split())  # 11, the same for every prompt


class Example(NamedTuple):
    """One training text: a prompt and the story written for it."""

    prompt: StoryPrompt
    story: str

    @property
    def text(self) -> str:
        return f"{self.prompt.text} {self.story}"


def _check_count(n, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be a positive int, got {n!r}")
    return n


def prompts(n: int, split: str = "train", seed: int = 0) -> list[StoryPrompt]:
    """``n`` random prompts of one split: hero-place pairs seen in training, or :data:`HELD_OUT_PAIRS`."""
    _check_count(n)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = random.Random(seed)
    pairs = sorted(HELD_OUT_PAIRS) if split == "held_out" else \
        [(h, p) for h in HEROES for p in PLACES if (h, p) not in HELD_OUT_PAIRS]
    return [StoryPrompt(*rng.choice(pairs), rng.choice(GOALS)) for _ in range(n)]


def tell(prompt: StoryPrompt, rng: random.Random) -> str:
    """One story for ``prompt`` from the grammar: opening, goal, zero to two problems, ending, ``the end .``"""
    if not isinstance(prompt, StoryPrompt):
        raise ValueError(f"prompt must be a StoryPrompt, got {type(prompt).__name__}")
    fill = {"hero": prompt.hero, "place": prompt.place, "goal": prompt.goal,
            "obstacle": rng.choice(OBSTACLES), "helper": rng.choice(HELPERS)}
    lines = [rng.choice(OPENINGS), rng.choice(GOAL_LINES), *rng.sample(PROBLEMS, rng.randint(0, 2)),
             rng.choice(ENDINGS)]
    return " ".join(line.format(**fill) for line in lines) + f" {THE_END}"


def stories_per_prompt() -> int:
    """How many different stories the grammar can write for one prompt (counted by writing them all)."""
    texts = set()
    middles = [()] + [(p,) for p in PROBLEMS] + [(a, b) for a in PROBLEMS for b in PROBLEMS if a != b]
    for obstacle in OBSTACLES:
        for helper in HELPERS:
            fill = {"hero": HEROES[0], "place": PLACES[0], "goal": GOALS[0], "obstacle": obstacle, "helper": helper}
            texts.update(" ".join(t.format(**fill) for t in (o, g, *m, e))
                         for o in OPENINGS for g in GOAL_LINES for m in middles for e in ENDINGS)
    return len(texts)


def corpus(n: int, seed: int = 0) -> list[Example]:
    """``n`` training examples: prompts of the ``"train"`` split, each with one story from the grammar."""
    rng = random.Random(seed)
    return [Example(p, tell(p, rng)) for p in prompts(n, "train", seed=seed + 1)]


def vocabulary() -> Vocabulary:
    """Every word a prompt or a story can use."""
    texts = [*OPENINGS, *GOAL_LINES, *PROBLEMS, *ENDINGS, *HELPERS, THE_END, "hero : place : goal : story :"]
    words = {w for t in texts for w in t.split() if not w.startswith("{")}
    return Vocabulary(words | set(HEROES) | set(PLACES) | set(GOALS) | set(OBSTACLES))


def training_batch(examples: list[Example], vocab: Vocabulary) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)``, each ``(B, T)``, for teacher forcing on the stories only: the targets
    of the prompt's words are ``-1`` (not scored), since the prompt is always given."""
    if isinstance(examples, str) or not isinstance(examples, list | tuple) or not examples:
        raise ValueError(f"examples must be a non-empty list of Example, got {examples!r:.60}")
    inputs, targets = shifted_ids([e.text for e in examples], vocab)
    targets[:, :PROMPT_WORDS] = -1
    return inputs, targets


def storyteller(vocab: Vocabulary, seed: int = 0) -> GPT:
    """The small GPT of page 6.4 (one layer of width 32, four heads), initialised from ``seed``
    (the global random state is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPT(GPTConfig(vocab_size=len(vocab), block_size=64, n_layer=1, n_head=4, n_embd=32))


def train_storyteller(model, examples: list[Example], vocab: Vocabulary, steps: int = 350, batch_size: int = 64,
                      lr: float = 2e-2, progress: bool = True) -> History:
    """Teach ``model`` the stories of ``examples``, ``batch_size`` new ones per step (``steps *
    batch_size`` are needed), with the course's :func:`~aigc_course.training.fit`: AdamW, warm-up
    then a cosine to a tenth of ``lr``. Too few steps and the model never learns to copy the
    prompt's names: that skill appears suddenly, after a plateau of the loss, at a step that
    depends on the initialisation (``benchmarks/bench_applications.py --only stories``)."""
    _check_count(steps, "steps")
    _check_count(batch_size, "batch_size")
    if len(examples) < steps * batch_size:
        raise ValueError(f"examples must hold steps * batch_size = {steps * batch_size} examples, got {len(examples)}")
    device = next(model.parameters()).device

    def loss(model, step):
        idx, targets = training_batch(examples[step * batch_size:(step + 1) * batch_size], vocab)
        return model(idx.to(device), targets.to(device))[1]

    optimizer = make_adamw(model, lr, weight_decay=0.01, betas=(0.9, 0.95))
    return fit(model, optimizer, loss, steps, scheduler=warmup_cosine_scheduler(optimizer, steps, 10, floor=0.1),
               desc="storyteller", progress=progress)


@torch.no_grad()
def write_stories(model, vocab: Vocabulary, story_prompts: list[StoryPrompt], temperature: float = 1.0,
                  max_words: int = 52, generator: torch.Generator | None = None) -> list[str]:
    """Prompt a course GPT with ``"<bos> {prompt.text}"`` for each prompt (batched: every prompt has
    :data:`PROMPT_WORDS` words) and sample the story at ``temperature``, up to ``<eos>`` or ``max_words``."""
    if not isinstance(story_prompts, list | tuple) or not story_prompts or \
            not all(isinstance(p, StoryPrompt) for p in story_prompts):
        raise ValueError("story_prompts must be a non-empty list of StoryPrompt")
    device = next(model.parameters()).device
    idx = torch.tensor([[vocab.stoi[BOS]] + vocab.encode(p.text) for p in story_prompts], device=device)
    out = model.generate(idx, max_words, temperature=temperature, generator=generator)
    return [vocab.decode(row) for row in out[:, idx.shape[1]:].tolist()]


def _first_unique(words: list[str], allowed) -> list[str]:
    return list(dict.fromkeys(w for w in words if w in allowed))


def _sentence_pattern(template: str) -> re.Pattern:
    """A template as a regex: each slot matches any word of its class, so a sentence with the
    wrong hero still parses (and is then judged by the consistency and constraint checks)."""
    classes = {"hero": HEROES, "place": PLACES, "goal": GOALS, "obstacle": OBSTACLES, "helper": HELPERS}
    parts = re.split(r"\{([a-z]+)\}", template)
    return re.compile("".join("(?:" + "|".join(map(re.escape, classes[p])) + ")" if i % 2 else re.escape(p)
                              for i, p in enumerate(parts)))


SENTENCES = tuple(_sentence_pattern(t) for t in (*OPENINGS, *GOAL_LINES, *PROBLEMS, *ENDINGS))
KINDS = ("constraint", "consistency", "form", "ending")


@dataclass(frozen=True)
class StoryCheck:
    """A story checked against its prompt. ``errors`` names each failure, prefixed by its kind
    (:data:`KINDS`): ``"constraint"`` (a field of the prompt never named), ``"consistency"``
    (the hero's name, the place or the object changes), ``"form"`` (a sentence the grammar
    cannot write) or ``"ending"`` (the story does not end with ``the end .`` exactly once)."""

    text: str
    prompt: StoryPrompt
    errors: tuple[str, ...]

    def _clean(self, kind: str) -> bool:
        return not any(e.startswith(kind + ":") for e in self.errors)

    @property
    def kept(self) -> bool:
        return self._clean("constraint")

    @property
    def consistent(self) -> bool:
        return self._clean("consistency")

    @property
    def well_formed(self) -> bool:
        return self._clean("form")

    @property
    def ended(self) -> bool:
        return self._clean("ending")

    @property
    def passed(self) -> bool:
        return not self.errors


def check_story(text: str, prompt: StoryPrompt) -> StoryCheck:
    """Parse ``text`` (a story without its prompt) back and compare it with ``prompt``: the hero,
    place and object by their word classes, each sentence against the grammar's templates."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    if not isinstance(prompt, StoryPrompt):
        raise ValueError(f"prompt must be a StoryPrompt, got {type(prompt).__name__}")
    words = text.split()
    errors = [f"constraint: {field} {value} never named" for field, value in
              (("hero", prompt.hero), ("place", prompt.place), ("goal", prompt.goal)) if value not in words]
    for what, allowed in (("the hero's name", HEROES), ("the place", PLACES), ("the object", GOALS)):
        seen = _first_unique(words, allowed)
        if len(seen) > 1:
            errors.append(f"consistency: {what} changes: {' -> '.join(seen)}")
    body = " ".join(words)
    end = body.find(THE_END)
    sentences = [x.strip() + " ." for x in (body[:end] if end >= 0 else body).split(" .")[:-1]]
    errors += [f"form: sentence {i + 1} is not in the grammar: {x!r}" for i, x in enumerate(sentences)
               if not any(p.fullmatch(x) for p in SENTENCES)]
    if end < 0:
        errors.append("ending: never says 'the end .'")
    elif end + len(THE_END) != len(body):
        errors.append("ending: words after 'the end .'")
    elif not sentences:
        errors.append("ending: 'the end .' with no story before it")
    return StoryCheck(text, prompt, tuple(errors))


class Novelty(NamedTuple):
    """How much of a story is copied: ``new_share`` of its ``n``-word windows are in no training
    story (NaN if it is shorter than ``n``), its ``longest`` run found verbatim in one, out of
    ``length`` words. It is ``copied`` when the whole text occurs verbatim in one training story.
    """

    new_share: float
    longest: int
    length: int

    @property
    def copied(self) -> bool:
        return self.length > 0 and self.longest == self.length


def story_index(examples: list[Example], vocab: Vocabulary) -> NGramIndex:
    """An n-gram index of the training stories (prompts left out), ``<eos>`` between stories."""
    if not examples:
        raise ValueError("examples must not be empty")
    ids = []
    for e in examples:
        ids += vocab.encode(e.story) + [vocab.stoi[EOS]]
    return NGramIndex(ids)


def novelty(text: str, index: NGramIndex, vocab: Vocabulary, n: int = 8) -> Novelty:
    """Compare story ``text`` with the training stories of ``index`` (:func:`story_index`)."""
    ids = vocab.encode(text)
    overlap = index.ngram_overlap(ids, n) if ids else float("nan")
    return Novelty(1.0 - overlap, index.longest_match(ids).length if ids else 0, len(ids))


def distinct_n(texts: list[str], n: int) -> float:
    """Distinct ``n``-grams over all ``n``-grams of ``texts`` (word windows within each text; 1 = no
    window repeats anywhere, near 0 = the samples say the same thing)."""
    _check_count(n)
    if isinstance(texts, str) or not texts:
        raise ValueError("texts must be a non-empty list of str")
    grams = [tuple(w[i:i + n]) for w in (t.split() for t in texts) for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def summary(checks: list[StoryCheck], novelties: list[Novelty]) -> dict[str, float]:
    """One row of the page's tables: the share of stories that keep the prompt, are consistent,
    are well formed, end, pass all four; the mean share of new 8-gram windows, the mean longest copied run, the
    share copied whole; distinct 2- and 4-grams across the stories."""
    if not checks or len(checks) != len(novelties):
        raise ValueError(f"checks and novelties must be non-empty and of one length, got {len(checks)} "
                         f"and {len(novelties)}")
    shares = [v.new_share for v in novelties if v.new_share == v.new_share]  # NaN: shorter than n
    texts = [c.text for c in checks]
    return {"kept": sum(c.kept for c in checks) / len(checks),
            "consistent": sum(c.consistent for c in checks) / len(checks),
            "well formed": sum(c.well_formed for c in checks) / len(checks),
            "ended": sum(c.ended for c in checks) / len(checks),
            "all four": sum(c.passed for c in checks) / len(checks),
            "new 8-grams": sum(shares) / len(shares) if shares else float("nan"),
            "longest copy": sum(v.longest for v in novelties) / len(novelties),
            "copied whole": sum(v.copied for v in novelties) / len(novelties),
            "distinct-2": distinct_n(texts, 2), "distinct-4": distinct_n(texts, 4)}
