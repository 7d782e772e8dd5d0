"""Chapter 1 exercises: add-k smoothing, bits per character, forward chaining.

References: :class:`aigc_course.classic.ngram.NGramLanguageModel` and
:class:`aigc_course.classic.expert_system.ExpertSystem`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from aigc_course.classic.expert_system import (
    ExpertSystem,
    Rule,
    animal_rules,
    generative_route_rules,
)
from aigc_course.classic.ngram import NGramLanguageModel
from aigc_course.exercises.core import Case, Exercise, Variant, register


def _randint(gen: torch.Generator, low: int, high: int) -> int:
    return int(torch.randint(low, high, (1,), generator=gen))


def _random_text(gen: torch.Generator, alphabet: str, length: int) -> str:
    ids = torch.randint(len(alphabet), (length,), generator=gen).tolist()
    return "".join(alphabet[i] for i in ids)


# ---------------------------------------------------------------------------- 1.1 add-k


def _add_k_reference(text: str, context: str, char: str, k: float = 1.0) -> float:
    model = NGramLanguageModel(len(context) + 1, "add_k", k).fit(text)
    return float(2.0 ** model.log2_probs(context + char)[-1])


def _overlapping(text: str, s: str, followed: bool = False) -> int:
    stop = len(text) - len(s) - (1 if followed else 0) + 1
    return sum(text.startswith(s, i) for i in range(max(stop, 0)))


def _add_k_variant(kind: str):
    def wrong(case: Case) -> float:
        text, context, char = case.args[:3]
        k = case.kwargs.get("k", 1.0)
        v = len(set(text)) + 1
        c_hw, c_h = _overlapping(text, context + char), _overlapping(text, context, followed=True)
        if kind == "no_unknown":
            v -= 1
        elif kind == "no_k_on_top":
            return c_hw / (c_h + k * v)
        elif kind == "range_short":
            c_hw = sum(text.startswith(context + char, i) for i in range(max(len(text) - len(context) - 1, 0)))
            c_h = sum(text.startswith(context, i) for i in range(max(len(text) - len(context) - 1, 0)))
        elif kind == "str_count":
            c_hw, c_h = text.count(context + char), text.count(context)
        elif kind == "tail":
            c_h = _overlapping(text, context) if context else len(text)
        elif kind == "k_only":
            return (c_hw + k) / (c_h + k)
        elif kind == "unsmoothed":
            return c_hw / c_h if c_h else float("nan")
        return (c_hw + k) / (c_h + k * v)

    return wrong


def _add_k_cases(gen: torch.Generator, device) -> list[Case]:
    cases = []
    for i in range(4):
        text = _random_text(gen, "abcd ", _randint(gen, 30, 80))
        order = _randint(gen, 2, 4)
        start = _randint(gen, 0, len(text) - order)
        context, char = text[start : start + order - 1], text[start + order - 1]
        k = [1.0, 0.5, 0.1, 2.0][i]
        cases.append(Case(f"random text, {order}-gram, k={k}", (text, context, char), {"k": k}))
    return cases + [
        Case("overlapping occurrences", ("aaaab", "aa", "a"), {"k": 1.0}),
        Case("context at the very end of the text", ("abcab", "ab", "c"), {"k": 1.0}),
        Case("context never seen", ("abcabc", "cc", "a"), {"k": 1.0}),
        Case("unigram (empty context)", ("banana", "", "n"), {"k": 0.5}),
        Case("character never seen", ("abcabc", "ab", "z"), {"k": 1.0}),
    ]


register(Exercise(
    id="1.1",
    title="Add-k smoothed n-gram probability",
    function="add_k_probability",
    reference=_add_k_reference,
    cases=_add_k_cases,
    variants=[
        Variant("the vocabulary size V must count the unknown-character symbol too: "
                "V = len(set(text)) + 1", _add_k_variant("no_unknown")),
        Variant("str.count skips overlapping occurrences ('aa' occurs 3 times in 'aaaa', str.count "
                "says 2); count with a loop over every start position", _add_k_variant("str_count")),
        Variant("c(h) counted the context where it ends the text; nothing follows it there, so it "
                "is not the context of any n-gram. Count h only where a character follows it",
                _add_k_variant("tail")),
        Variant("the denominator must add k·V (k for every symbol of the vocabulary), not just k",
                _add_k_variant("k_only")),
        Variant("no smoothing: add k to the count and k·V to the context count",
                _add_k_variant("unsmoothed")),
        Variant("add k to the n-gram count too: the numerator is c(hw) + k, so an unseen character keeps "
                "probability k / (c(h) + kV) > 0", _add_k_variant("no_k_on_top")),
        Variant("off by one: your loop over start positions stops one position early and misses the "
                "n-gram that ends the text; a string s starts at every i from 0 to len(text) - len(s)",
                _add_k_variant("range_short")),
    ],
    hints=[
        "P(w | h) = (c(hw) + k) / (c(h) + k·V): count how often the n-gram h+w occurs, how often h "
        "is followed by some character, and V = number of distinct characters of the text + 1 "
        "(the model's unknown symbol).",
        "Count overlapping occurrences: sum(text.startswith(s, i) for i in range(...)). For c(h) "
        "stop one position earlier, so that a character follows each counted h.",
        "c_hw = sum(text.startswith(context + char, i) for i in range(len(text) - len(context)));\n"
        "c_h = sum(text.startswith(context, i) for i in range(len(text) - len(context)));\n"
        "return (c_hw + k) / (c_h + k * (len(set(text)) + 1))",
    ],
    explanation=(
        "Both counts slide over every start position, so overlapping occurrences count. The "
        "context count c(h) is the number of n-grams that start with h, so an h at the very end "
        "of the text (with nothing after it) does not count; that also makes the probabilities "
        "over all V symbols sum to 1. V includes the unknown symbol, as in "
        "`NGramLanguageModel`."
    ),
    atol=1e-9,
    rtol=1e-9,
))


# ---------------------------------------------------------------------------- 1.2 bits per char


def _bpc_cases(gen: torch.Generator, device) -> list[Case]:
    cases = []
    for name, length, test_length in (("short text", 200, 40), ("longer text", 600, 200)):
        train = _random_text(gen, "abcde \n", length)
        test = _random_text(gen, "abcde \n", test_length)
        model = NGramLanguageModel(3, "kneser_ney").fit(train)
        ln_probs = model.log2_probs(test) * math.log(2)
        cases.append(Case(f"{name}, 3-gram Kneser-Ney model", (ln_probs,), expected=model.bits_per_char(test)))
    model = NGramLanguageModel(2, "add_k").fit("abab")
    one = "a"
    cases.append(Case("a one-character text", (model.log2_probs(one) * math.log(2),),
                      expected=model.bits_per_char(one)))
    return cases


register(Exercise(
    id="1.2",
    title="Bits per character from log-probabilities",
    function="bits_per_char",
    reference=None,
    cases=_bpc_cases,
    variants=[
        Variant("these are natural-log probabilities (nats): divide by ln 2 to get bits",
                lambda c: float(-np.mean(c.args[0]))),
        Variant("wrong sign: bits per character is the *negative* mean log-probability (a cost, >= 0)",
                lambda c: float(np.mean(c.args[0]) / math.log(2))),
        Variant("you summed over the characters; bits per character is the average",
                lambda c: float(-np.sum(c.args[0]) / math.log(2))),
        Variant("that is the perplexity 2**bpc, not the bits per character",
                lambda c: float(2 ** (-np.mean(c.args[0]) / math.log(2)))),
        Variant("converted with log10: divide nats by ln 2 (math.log(2)), not by ln 10",
                lambda c: float(-np.mean(c.args[0]) / math.log(10))),
    ],
    hints=[
        "Bits per character is the average cost of a character in bits: -mean(log2 p).",
        "Your inputs are ln p (nats). log2 p = ln p / ln 2.",
        "return float(-np.mean(ln_probs) / math.log(2))",
    ],
    explanation=(
        "A character of probability p costs -log2 p bits; the average over the text is the bits "
        "per character. PyTorch's cross-entropy gives nats (natural logs), so divide by ln 2."
    ),
    atol=1e-9,
    rtol=1e-9,
))


# ---------------------------------------------------------------------------- 1.3 forward chaining


def _chain_reference(rules: list[Rule], facts: set[str]) -> list[str]:
    return ExpertSystem(rules).infer(facts).derived()


def _random_rules(gen: torch.Generator, n_facts: int = 10, n_rules: int = 10) -> list[Rule]:
    rules = []
    for r in range(n_rules):
        conclusion = _randint(gen, 2, n_facts)
        n_cond = _randint(gen, 1, min(3, conclusion) + 1)
        conds = torch.randperm(conclusion, generator=gen)[:n_cond].tolist()
        rules.append(Rule(f"R{r + 1}", [f"f{c}" for c in conds], f"f{conclusion}"))
    return rules


def _chain_cases(gen: torch.Generator, device) -> list[Case]:
    ordering = [Rule("A", ["x"], "y"), Rule("B", ["y"], "z"), Rule("C", ["w"], "v")]
    cases = [
        Case("animal rules: a cheetah", (animal_rules(), {"has hair", "eats meat", "tawny colour", "dark spots"})),
        Case("animal rules: a penguin",
             (animal_rules(), {"has feathers", "does not fly", "swims", "black and white"})),
        Case("course rules: conditional image generation",
             (generative_route_rules(), {"output is image", "needs one-step sampling", "needs sharp samples",
                                         "output depends on a label or prompt"})),
        Case("cycle order: B needs what A derives in the same cycle", (ordering, {"x", "w"})),
        Case("no rule fires", (animal_rules(), {"has scales"})),
    ]
    for i in range(3):
        facts = {f"f{j}" for j in torch.randperm(4, generator=gen)[:2].tolist()}
        cases.append(Case(f"random rule base {i + 1}", (_random_rules(gen), facts)))
    return cases


def _immediate(case: Case) -> list[str]:
    rules, facts = case.args
    known, derived, changed = set(facts), [], True
    while changed:
        changed = False
        for rule in rules:
            if rule.conclusion not in known and rule.conditions <= known:
                known.add(rule.conclusion)
                derived.append(rule.conclusion)
                changed = True
    return derived


def _one_cycle(case: Case) -> list[str]:
    rules, facts = case.args
    derived = []
    for rule in rules:
        if rule.conclusion not in facts and rule.conditions <= set(facts) and rule.conclusion not in derived:
            derived.append(rule.conclusion)
    return derived


def _chain_diagnostic(case: Case, expected, actual) -> str | None:
    if isinstance(actual, (set, frozenset)):
        return "return a list, in the order the facts were derived; a set has no order"
    if not isinstance(actual, list) or not all(type(a) is str for a in actual):
        return None
    given = set(case.args[1])
    dup = sorted({a for a in actual if actual.count(a) > 1})
    if dup:
        return f"{dup[0]!r} was derived twice: a rule fires only when its conclusion is new"
    if given & set(actual):
        return f"{sorted(given & set(actual))[0]!r} was given; return only the facts you derived"
    if sorted(actual) == sorted(expected) and actual != expected and actual != _immediate(case):
        return ("the right facts in the wrong order: list them in the order they are derived (cycle by "
                "cycle, and in rule-base order within a cycle)")
    if set(actual) < set(expected) and actual == expected[: len(actual)] and actual != _one_cycle(case):
        missing = expected[len(actual)]
        return (f"stopped too early: {missing!r} was never derived; keep cycling until no rule "
                "adds a new fact (a fixed point)")
    return None


register(Exercise(
    id="1.3",
    title="Forward chaining",
    function="forward_chain",
    reference=_chain_reference,
    cases=_chain_cases,
    diagnostics=[_chain_diagnostic],
    variants=[
        Variant("a rule fired in the same cycle as the fact it needs was derived. In each cycle, "
                "first find every rule whose conditions hold in the facts at the start of the "
                "cycle, then fire them in rule-base order", _immediate),
        Variant("stopped after one cycle: repeat until no rule adds a new fact", _one_cycle),
    ],
    hints=[
        "Loop over cycles. In each cycle, collect the rules whose conditions are all known facts "
        "and whose conclusion is new; stop when there are none.",
        "rule.conditions is a frozenset, so `rule.conditions <= facts` tests 'all conditions hold'. "
        "Decide which rules fire *before* adding any conclusion of this cycle; add them in order, "
        "skipping a conclusion a rule earlier in the same cycle already added.",
        "known = set(facts); derived = []\nwhile True:\n    fired = [r for r in rules if r.conclusion "
        "not in known and r.conditions <= known]\n    if not fired: return derived\n    for r in fired:\n"
        "        if r.conclusion not in known: known.add(r.conclusion); derived.append(r.conclusion)",
    ],
    explanation=(
        "Each cycle first collects every rule that can fire from the facts known at the start "
        "of the cycle, then adds their conclusions in rule-base order. Rules only add facts, so "
        "the loop reaches a fixed point after at most `len(rules)` cycles. This is exactly "
        "`ExpertSystem.infer`."
    ),
))
