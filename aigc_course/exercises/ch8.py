"""Chapter 8 exercises: the watermark's green list, the detector's z-score, n-gram overlap.

References: :meth:`aigc_course.watermark.Watermark.green_list`,
:func:`aigc_course.watermark.green_z_score` and
:meth:`aigc_course.metrics.memorisation.NGramIndex.ngram_overlap`.
"""

from __future__ import annotations

import math

import torch

from aigc_course.exercises.core import Case, Exercise, Variant, register
from aigc_course.metrics.memorisation import NGramIndex
from aigc_course.watermark import Watermark, green_z_score

# ---------------------------------------------------------------------------- 8.1 the green list


def _green_reference(previous_token, vocab_size, gamma, hash_key):
    return Watermark(vocab_size, gamma=gamma, hash_key=hash_key).green_list(previous_token).sort().values


def _green_cases(gen: torch.Generator, device) -> list[Case]:
    draw = int(torch.randint(1000, (1,), generator=gen))
    return [
        Case("code-gpt's vocabulary: V = 1024, gamma = 0.25, the default key", (draw % 1024, 1024, 0.25, 15485863)),
        Case("V = 75, gamma = 0.5 (gamma V = 37.5 is not a whole number)", (draw % 75, 75, 0.5, 7 + draw)),
        Case("previous token 0", (0, 200, 0.3, 99991)),
        Case("a small green list: V = 50, gamma = 0.1", (1 + draw % 49, 50, 0.1, 123)),
    ]


def _green_variant(kind: str):
    def wrong(case: Case):
        previous, vocab_size, gamma, key = case.args
        g = torch.Generator()
        seed = {"no_key": previous, "sum": key + previous}.get(kind, key * previous)
        g.manual_seed(seed % (2**64 - 1))
        size = round(vocab_size * gamma) if kind == "round" else int(vocab_size * gamma)
        perm = torch.randperm(vocab_size, generator=g)
        green = perm[-size:] if kind == "last" else perm[:size]
        return green.sort().values

    return wrong


register(Exercise(
    id="8.1",
    title="The green list",
    function="green_list",
    reference=_green_reference,
    cases=_green_cases,
    variants=[
        Variant("the seed must mix in the secret key: hash_key * previous_token (seeded with the token alone, "
                "anyone can recompute the lists)", _green_variant("no_key")),
        Variant("the key and the token are multiplied, not added: seed = hash_key * previous_token",
                _green_variant("sum")),
        Variant("the green list is the *first* G entries of the permutation, not the last", _green_variant("last")),
        Variant("G = int(gamma * vocab_size) rounds down; round() gives one token too many when gamma V ends "
                "in .5 or more", _green_variant("round")),
    ],
    hints=[
        "Make a CPU generator, torch.Generator(), seed it with manual_seed(hash_key * previous_token), draw "
        "torch.randperm(vocab_size, generator=g) and keep its first int(gamma * vocab_size) entries.",
        "Return them sorted: torch.sort(green).values (the detector only asks 'is this token green?').",
        "g = torch.Generator()\ng.manual_seed(hash_key * previous_token % (2**64 - 1))\n"
        "green = torch.randperm(vocab_size, generator=g)[: int(gamma * vocab_size)]\nreturn green.sort().values",
    ],
    explanation=(
        "The green list is a pseudo-random function of the previous token and a secret key: the generator "
        "and the detector, holding the same key, draw the same list, while to anyone else it looks random. "
        "Seeding with hash_key * previous_token (modulo 2^64 - 1) and taking the first G entries of "
        "torch.randperm is the 'lefthash' scheme of transformers' WatermarkLogitsProcessor."
    ),
))


# ---------------------------------------------------------------------------- 8.2 the z-score


def _z_reference(token_ids, green_mask, gamma):
    green = green_mask[token_ids[:, :-1], token_ids[:, 1:]]  # (B, T - 1): is token t green after token t-1?
    return green_z_score(green.sum(dim=1, dtype=torch.float64), token_ids.shape[1] - 1, gamma)


def _z_cases(gen: torch.Generator, device) -> list[Case]:
    cases = []
    for name, (vocab, gamma, batch, length, marked) in (
        ("unmarked text: V = 40, gamma = 0.25, 4 texts of 30 tokens", (40, 0.25, 4, 30, False)),
        ("watermarked text (green tokens favoured): V = 60, gamma = 0.25", (60, 0.25, 3, 50, True)),
        ("gamma = 0.5, one text of 2 tokens (one scored)", (16, 0.5, 1, 2, False)),
    ):
        key = int(torch.randint(10**6, (1,), generator=gen))
        mask = Watermark(vocab, gamma=gamma, hash_key=key).green_mask(torch.arange(vocab))  # (V, V)
        ids = torch.randint(vocab, (batch, length), generator=gen)
        if marked:  # re-draw most tokens from the green list of the token before
            for t in range(1, length):
                green = mask[ids[:, t - 1]].float()
                pick = torch.multinomial(green, 1, generator=gen)[:, 0]
                ids[:, t] = torch.where(torch.rand(batch, generator=gen) < 0.7, pick, ids[:, t])
        cases.append(Case(name, (ids.to(device), mask.to(device), gamma)))
    return cases


def _z_variant(kind: str):
    def wrong(case: Case):
        ids, mask, gamma = case.args
        if kind == "transposed":
            green = mask[ids[:, 1:], ids[:, :-1]]
        else:
            green = mask[ids[:, :-1], ids[:, 1:]]
        g = green.sum(dim=1, dtype=torch.float64)
        n = ids.shape[1] if kind == "count_first" else ids.shape[1] - 1
        if kind == "fraction":
            return g / n
        if kind == "no_one_minus":
            return (g - gamma * n) / math.sqrt(n * gamma)
        return (g - gamma * n) / math.sqrt(n * gamma * (1 - gamma))

    return wrong


register(Exercise(
    id="8.2",
    title="The detector's z-score",
    function="watermark_z_score",
    reference=_z_reference,
    cases=_z_cases,
    variants=[
        Variant("the first token has no token before it, so it is not scored: n = T - 1 tokens per text",
                _z_variant("count_first")),
        Variant("green_mask[previous, token], not green_mask[token, previous]: the list is drawn from the "
                "token *before*", _z_variant("transposed")),
        Variant("that is the green fraction g / n; the z-score is (g - gamma n) / sqrt(n gamma (1 - gamma))",
                _z_variant("fraction")),
        Variant("the binomial's variance is n gamma (1 - gamma): you left out (1 - gamma)", _z_variant("no_one_minus")),
    ],
    error_hints=[("Float", "count the green tokens as float64: green.sum(dim=1, dtype=torch.float64)")],
    hints=[
        "green_mask[token_ids[:, :-1], token_ids[:, 1:]] is (B, T - 1): True where token t is green after "
        "token t - 1. Sum each row to get g; n = T - 1.",
        "z = (g - gamma * n) / sqrt(n * gamma * (1 - gamma)) (eq. 8.1.2), as float64.",
        "green = green_mask[token_ids[:, :-1], token_ids[:, 1:]]\nn = token_ids.shape[1] - 1\n"
        "g = green.sum(dim=1, dtype=torch.float64)\nreturn (g - gamma * n) / math.sqrt(n * gamma * (1 - gamma))",
    ],
    explanation=(
        "Without a watermark each scored token is green with probability gamma whatever the text, so the "
        "green count g of n tokens is Binomial(n, gamma), with mean gamma n and variance n gamma (1 - gamma). "
        "The z-score measures how many standard deviations g lies above its mean; it is what transformers' "
        "WatermarkDetector reports, and z > 4 happens by chance with probability about 3e-5."
    ),
    atol=1e-9,
    rtol=1e-9,
))


# ---------------------------------------------------------------------------- 8.3 n-gram overlap


def _overlap_reference(text_ids, corpus_ids, n):
    return NGramIndex(corpus_ids.cpu()).ngram_overlap(text_ids.cpu(), n)


def _overlap_cases(gen: torch.Generator, device) -> list[Case]:
    corpus = torch.randint(5, (300,), generator=gen)
    text = torch.randint(5, (60,), generator=gen)
    pasted = text.clone()
    pasted[10:40] = corpus[50:80]
    repeats = torch.tensor([1, 2, 3, 1, 2, 3, 1, 2, 3, 4, 4, 4])
    return [
        Case("random text, n = 3", (text.to(device), corpus.to(device), 3)),
        Case("a pasted piece of the corpus, n = 6", (pasted.to(device), corpus.to(device), 6)),
        Case("repeated windows, a short corpus, n = 2", (repeats.to(device), torch.tensor([1, 2, 3, 4]).to(device), 2)),
        Case("unigrams, n = 1", (text[:20].to(device), corpus[:8].to(device), 1)),
    ]


def _overlap_variant(kind: str):
    def wrong(case: Case):
        text, corpus, n = (x.tolist() if isinstance(x, torch.Tensor) else x for x in case.args)
        if kind == "n_minus_one":
            n = max(n - 1, 1)
        grams = lambda seq, stop: [tuple(seq[i: i + n]) for i in range(stop)]  # noqa: E731
        seen = set(grams(corpus, len(corpus) - n + 1))
        windows = grams(text, len(text) - n + (0 if kind == "last_missing" else 1))
        if kind == "distinct":
            windows = list(set(windows))
        if kind == "reversed":
            theirs = set(grams(text, len(text) - n + 1))
            corpus_windows = grams(corpus, len(corpus) - n + 1)
            return sum(w in theirs for w in corpus_windows) / len(corpus_windows)
        return sum(w in seen for w in windows) / len(windows)

    return wrong


register(Exercise(
    id="8.3",
    title="n-gram overlap with a corpus",
    function="ngram_overlap",
    reference=_overlap_reference,
    cases=_overlap_cases,
    variants=[
        Variant("count every window of the text, repeats included: a text of T tokens has T - n + 1 of them",
                _overlap_variant("distinct")),
        Variant("the last window text[T-n:T] is missing: range(len(text) - n + 1)", _overlap_variant("last_missing")),
        Variant("the question is the share of the *text's* windows found in the corpus, not the share of the "
                "corpus's windows found in the text", _overlap_variant("reversed")),
        Variant("the windows have n tokens, not n - 1", _overlap_variant("n_minus_one")),
    ],
    hints=[
        "Put every n-token window of the corpus, as a tuple, in a set. Then look up every window of the text.",
        "text, corpus = text_ids.tolist(), corpus_ids.tolist(); seen = {tuple(corpus[i:i + n]) for i in "
        "range(len(corpus) - n + 1)}; windows = [tuple(text[i:i + n]) for i in range(len(text) - n + 1)].",
        "text, corpus = text_ids.tolist(), corpus_ids.tolist()\n"
        "seen = {tuple(corpus[i:i + n]) for i in range(len(corpus) - n + 1)}\n"
        "windows = [tuple(text[i:i + n]) for i in range(len(text) - n + 1)]\n"
        "return sum(w in seen for w in windows) / len(windows)",
    ],
    explanation=(
        "A set of tuples answers 'does this window occur in the corpus?' in constant time. For a corpus of "
        "710,000 tokens, aigc_course.metrics.memorisation.NGramIndex stores 64-bit hashes of the windows "
        "instead, sorted, and looks windows up by binary search: the same answer with a fraction of the memory."
    ),
))
