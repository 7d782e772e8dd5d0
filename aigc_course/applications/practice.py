"""Practice problems with checked answers: a model proposes, a checker verifies (6.2, 练习题生成).

The generator is the course's base chat model (``tiny-chat-base``), pretrained on prose that
states facts such as ``"37 plus 45 is 82."`` or ``"the digits 9035 in order are 0359."``
(:func:`aigc_course.alignment.tasks.pretraining_text`). Sampled freely, it writes new
sentences of that kind -- each one a practice problem *with its answer*. Some are not
problems at all (a garbled sentence, a number out of range) and some state a wrong answer.

The checker needs no model: :func:`parse_item` recognises a sentence as one of the known
fact templates and reads off the task, its arguments and the stated answer;
:func:`check_item` recomputes the answer exactly with
:func:`aigc_course.alignment.tasks.solve`. **Generate, then verify** keeps only the items
that parse and whose stated answer is right, and turns them into questions for a worksheet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from aigc_course.alignment.tasks import FACTS, TASKS, solve

# what each argument of a fact template may look like, and the range draw_args() gives it
# (lowercase's phrase is in capitals: the task is to write it in small letters)
_FIELD = {
    "word": r"[a-z]{3,7}", "digits": r"[0-9]{3,5}", "a": r"[0-9]{1,2}", "b": r"[0-9]{1,2}",
    "n": r"[1-9][0-9]{0,2}", "phrase": r"[a-z]{3,6}(?: [a-z]{3,6})?", "letter": r"[a-z]", "answer": r".+?",
}
_INT_FIELDS = ("a", "b", "n")


def _template_regex(task: str, template: str) -> re.Pattern:
    parts = re.split(r"(\{[a-z]+\})", template)
    out = []
    for p in parts:
        if p.startswith("{") and p.endswith("}"):
            name = p[1:-1]
            field = _FIELD[name].upper() if (task, name) == ("lowercase", "phrase") else _FIELD[name]
            out.append(f"(?P<{name}>{field})")
        else:
            out.append(re.escape(p))
    return re.compile("^" + "".join(out) + "$")


PATTERNS: list[tuple[str, re.Pattern]] = [(task, _template_regex(task, t)) for task, ts in FACTS.items() for t in ts]


@dataclass(frozen=True)
class Item:
    """A generated sentence and what the checker found in it.

    ``status`` is ``"invalid"`` (not a problem the checker knows), ``"wrong"`` (a problem whose
    stated answer is wrong) or ``"correct"``. ``task`` and ``args`` are set unless invalid.
    """

    sentence: str
    status: str
    task: str | None = None
    args: tuple = ()
    stated: str | None = None
    answer: str | None = None

    def question(self) -> str:
        """The item as a worksheet question: the task's first phrasing, e.g. ``"add 37 and 45"``."""
        if self.task is None:
            raise ValueError(f"an invalid item has no question: {self.sentence!r}")
        return TASKS[self.task].phrasings[0].format(**dict(self.args))


def parse_item(sentence: str) -> tuple[str, dict, str] | None:
    """``(task, args, stated_answer)`` if ``sentence`` is one of the fact templates, else ``None``."""
    if not isinstance(sentence, str):
        raise ValueError(f"sentence must be a str, got {type(sentence).__name__}")
    text = sentence.strip()
    for task, pattern in PATTERNS:
        m = pattern.match(text)
        if m:
            fields = m.groupdict()
            stated = fields.pop("answer")
            args = {k: int(v) if k in _INT_FIELDS else v for k, v in fields.items()}
            return task, args, stated
    return None


def check_item(sentence: str) -> Item:
    """Parse ``sentence`` and recompute its answer exactly: an :class:`Item` with its status."""
    parsed = parse_item(sentence)
    if parsed is None:
        return Item(sentence, "invalid")
    task, args, stated = parsed
    answer = solve(task, args)
    status = "correct" if stated == answer else "wrong"
    return Item(sentence, status, task, tuple(sorted(args.items())), stated, answer)


def split_sentences(text: str) -> list[str]:
    """Complete sentences of generated text: split after ``". "`` and at line ends; the
    unfinished tail (no final full stop) is dropped."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    out = []
    for line in text.split("\n"):
        pieces = re.split(r"(?<=\.) ", line)
        out += [p.strip() for p in pieces if p.strip().endswith(".")]
    return out


@torch.no_grad()
def propose(model, tokenizer, n_streams: int, length: int = 90, temperature: float = 1.0,
            generator: torch.Generator | None = None) -> list[str]:
    """Sample ``n_streams`` texts of ``length`` characters from a new line and split them into
    sentences (the proposed items). ``model`` is a course GPT over ``tokenizer``'s characters."""
    if isinstance(n_streams, bool) or not isinstance(n_streams, int) or n_streams < 1:
        raise ValueError(f"n_streams must be a positive int, got {n_streams!r}")
    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length < model.config.block_size:
        raise ValueError(f"length must be an int in [1, {model.config.block_size - 1}], got {length!r}")
    device = next(model.parameters()).device
    start = torch.full((n_streams, 1), tokenizer.stoi["\n"], dtype=torch.long, device=device)
    out = model.generate(start, length, temperature=temperature, generator=generator)
    sentences = []
    for row in out[:, 1:].tolist():
        sentences += split_sentences(tokenizer.decode(row))
    return sentences


def summarise(items: list[Item]) -> dict:
    """Counts and shares of each status, and how many correct items are distinct."""
    if not items:
        raise ValueError("items must not be empty")
    n = len(items)
    counts = {s: sum(i.status == s for i in items) for s in ("correct", "wrong", "invalid")}
    distinct = len({(i.task, i.args) for i in items if i.status == "correct"})
    return {"items": n, **counts, "valid_share": (n - counts["invalid"]) / n,
            "correct_share": counts["correct"] / n, "distinct_correct": distinct}


def generate_then_verify(sentences: list[str]) -> tuple[list[Item], list[Item]]:
    """``(kept, rejected)``: the checker keeps the correct items, one per distinct problem."""
    kept, rejected, seen = [], [], set()
    for s in sentences:
        item = check_item(s)
        key = (item.task, item.args)
        if item.status == "correct" and key not in seen:
            seen.add(key)
            kept.append(item)
        else:
            rejected.append(item)
    return kept, rejected
