"""A rule-based expert system: AI 1.0's symbolic approach.

Knowledge is a list of if-then :class:`Rule` s written by a human expert. *Forward chaining*
starts from the known facts and fires every rule whose conditions all hold, adding its
conclusion as a new fact, until nothing new can be concluded. Every firing is recorded,
so the system can explain each conclusion -- the property that made expert systems
such as MYCIN trusted, and that neural networks lack.

:func:`animal_rules` is the classic teaching knowledge base (after Winston's ZOOKEEPER);
:func:`generative_route_rules` is a small one for this course: which family of generative
model fits a task.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rule:
    """IF all ``conditions`` hold THEN ``conclusion`` holds."""

    name: str
    conditions: frozenset[str]
    conclusion: str

    def __init__(self, name: str, conditions: Iterable[str], conclusion: str):
        conditions = frozenset(conditions)
        if not name or not conclusion or not conditions:
            raise ValueError(f"a rule needs a name, at least one condition and a conclusion; got {name!r}")
        if conclusion in conditions:
            raise ValueError(f"rule {name!r} concludes one of its own conditions ({conclusion!r})")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "conditions", conditions)
        object.__setattr__(self, "conclusion", conclusion)

    def __str__(self) -> str:
        return f"{self.name}: IF {' AND '.join(sorted(self.conditions))} THEN {self.conclusion}"


@dataclass(frozen=True)
class Firing:
    """One step of forward chaining: ``rule`` fired in ``cycle`` and added its conclusion."""

    cycle: int
    rule: Rule


@dataclass
class Inference:
    """The result of :meth:`ExpertSystem.infer`: all facts and how each derived one arose."""

    given: frozenset[str]
    facts: set[str]
    trace: list[Firing] = field(default_factory=list)

    def derived(self) -> list[str]:
        """Conclusions in the order they were reached."""
        return [f.rule.conclusion for f in self.trace]

    def explain(self, fact: str, indent: int = 0) -> str:
        """Why ``fact`` holds, as an indented proof tree."""
        pad = "  " * indent
        if fact in self.given:
            return f"{pad}{fact} (given)"
        for firing in self.trace:
            if firing.rule.conclusion == fact:
                lines = [f"{pad}{fact} (by {firing.rule.name}, cycle {firing.cycle})"]
                lines += [self.explain(c, indent + 1) for c in sorted(firing.rule.conditions)]
                return "\n".join(lines)
        raise ValueError(f"{fact!r} was neither given nor derived, so it has no explanation")


class ExpertSystem:
    """Forward chaining over a fixed rule base."""

    def __init__(self, rules: Iterable[Rule]):
        self.rules = list(rules)
        names = [r.name for r in self.rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique; repeated: {duplicates}")

    def infer(self, facts: Iterable[str], max_cycles: int = 100) -> Inference:
        """Fire rules until no rule adds a new fact (a fixed point).

        In each cycle, every rule whose conditions hold and whose conclusion is new fires,
        in rule-base order. Rules only add facts, so the loop ends after at most
        ``len(rules)`` cycles.
        """
        if isinstance(facts, str):
            raise ValueError("facts must be an iterable of fact strings, not a single string")
        given = frozenset(facts)
        result = Inference(given=given, facts=set(given))
        for cycle in range(1, max_cycles + 1):
            fired = [r for r in self.rules if r.conclusion not in result.facts and r.conditions <= result.facts]
            if not fired:
                return result
            for rule in fired:
                if rule.conclusion not in result.facts:
                    result.facts.add(rule.conclusion)
                    result.trace.append(Firing(cycle, rule))
        raise RuntimeError(f"no fixed point after {max_cycles} cycles")

    def conclusions(self, facts: Iterable[str], prefix: str) -> list[str]:
        """Derived facts that start with ``prefix`` (e.g. ``"animal:"``), in order reached."""
        return [f for f in self.infer(facts).derived() if f.startswith(prefix)]


def animal_rules() -> list[Rule]:
    """The classic animal-identification rule base (after Winston's ZOOKEEPER)."""
    return [
        Rule("Z1", ["has hair"], "mammal"),
        Rule("Z2", ["gives milk"], "mammal"),
        Rule("Z3", ["has feathers"], "bird"),
        Rule("Z4", ["flies", "lays eggs"], "bird"),
        Rule("Z5", ["mammal", "eats meat"], "carnivore"),
        Rule("Z6", ["mammal", "has pointed teeth", "has claws", "eyes point forward"], "carnivore"),
        Rule("Z7", ["mammal", "has hoofs"], "ungulate"),
        Rule("Z8", ["mammal", "chews cud"], "ungulate"),
        Rule("Z9", ["carnivore", "tawny colour", "dark spots"], "animal: cheetah"),
        Rule("Z10", ["carnivore", "tawny colour", "black stripes"], "animal: tiger"),
        Rule("Z11", ["ungulate", "long neck", "long legs", "dark spots"], "animal: giraffe"),
        Rule("Z12", ["ungulate", "black stripes"], "animal: zebra"),
        Rule("Z13", ["bird", "does not fly", "long neck", "long legs", "black and white"], "animal: ostrich"),
        Rule("Z14", ["bird", "does not fly", "swims", "black and white"], "animal: penguin"),
        Rule("Z15", ["bird", "flies well"], "animal: albatross"),
    ]


def generative_route_rules() -> list[Rule]:
    """Which generative route suits a task: the course's own small knowledge base."""
    return [
        Rule("G1", ["output is text"], "needs sequence model"),
        Rule("G2", ["needs sequence model"], "route: autoregressive (Ch. 3.1)"),
        Rule("G3", ["output is image", "needs highest fidelity"], "prefers iterative refinement"),
        Rule("G4", ["prefers iterative refinement", "can afford many network evaluations"], "route: diffusion (Ch. 3.3)"),
        Rule("G5", ["output is image", "needs one-step sampling"], "prefers single pass generator"),
        Rule("G6", ["prefers single pass generator", "needs likelihood or encoder"], "route: VAE (Ch. 2)"),
        Rule("G7", ["prefers single pass generator", "needs sharp samples"], "route: GAN (Ch. 3.2)"),
        Rule("G8", ["output depends on a label or prompt"], "use conditioning"),
        Rule("G9", ["use conditioning", "route: GAN (Ch. 3.2)"], "route: conditional GAN (Ch. 3.2.2)"),
        Rule("G10", ["use conditioning", "route: diffusion (Ch. 3.3)"], "add classifier-free guidance (Ch. 3.3)"),
    ]
