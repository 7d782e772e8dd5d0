"""Chapter 6 exercises: retrieval's nearest neighbours, TF-IDF vectors, and the generate-then-verify filter.

References: :func:`aigc_course.retrieval.cosine_similarity` with
:func:`aigc_course.retrieval.top_k`, :class:`aigc_course.retrieval.TfidfEncoder`, and
:func:`aigc_course.applications.practice.generate_then_verify`.
"""

from __future__ import annotations

import math
from collections import Counter

import torch

from aigc_course.applications.practice import generate_then_verify
from aigc_course.exercises.core import Case, Exercise, Probe, Variant, register
from aigc_course.retrieval import TfidfEncoder, cosine_similarity, top_k, words

# ---------------------------------------------------------------------------- 6.1 top-k retrieval


def _search_reference(queries, keys, k):
    return top_k(cosine_similarity(queries, keys), k)  # raises ValueError naming k when k > N


class _SearchExercise(Exercise):
    """The k-too-large case has no value to compare: the function must raise (its probe checks)."""

    def expected(self, case: Case):
        return None if case.info.get("must_raise") else super().expected(case)


def _search_cases(gen: torch.Generator, device) -> list[Case]:
    def randn(*shape):
        return torch.randn(shape, generator=gen).to(device)

    keys = randn(12, 6)
    cases = [
        Case("3 queries, 12 entries of width 6, k = 4", (randn(3, 6), keys, 4)),
        Case("1 query, k = 1", (randn(1, 6), keys, 1)),
        Case("k equal to the number of entries", (randn(2, 6), keys[:5], 5)),
    ]
    # ties: entries 1, 3 and 4 point the same way at lengths differing by powers of two, so their
    # cosines are equal to the last bit whatever order the student computes them in
    tied = randn(6, 4)
    tied[3] = 2.0 * tied[1]
    tied[4] = 0.5 * tied[1]
    cases.append(Case("tied scores: equal cosines go to the lower index first", (tied[1:2] * 3.0, tied, 4)))
    scaled = randn(8, 5) * torch.linspace(0.1, 10.0, 8, device=device)[:, None]
    cases.append(Case("entries of very different lengths (cosine, not dot product)", (randn(2, 5), scaled, 3)))
    # the function must raise here: the case's probe swallows a ValueError and reads its message
    too_large = Case("k = 6 for an index of 5 entries", (randn(1, 3), randn(5, 3), 6), info={"must_raise": True})
    too_large.probe = Probe("k", lambda gen, device: too_large, _CatchValueError, _too_large_verdict)
    cases.append(too_large)
    return cases


class _CatchValueError:
    """Entered around the call on the k-too-large case: records (and swallows) a ValueError."""

    def __init__(self):
        self.error: ValueError | None = None

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is not None and issubclass(kind, ValueError):
            self.error = value
            return True
        return False


def _too_large_verdict(case: Case, watcher: _CatchValueError) -> str | None:
    if watcher.error is None:
        return ("k = 6 is larger than the index (5 entries): raise ValueError with a message naming k and the "
                "index size, instead of returning fewer (or repeated) entries")
    message = str(watcher.error)
    if "k" not in message or "5" not in message:
        return (f"the ValueError's message {message!r} should name k and how many entries the index holds, "
                "e.g. 'k=6 is larger than the index, which holds 5 entries'")
    return None


def _ties_out_of_order(case: Case, expected, actual) -> str | None:
    if case.name.startswith("tied") and isinstance(actual, (tuple, list)) and len(actual) == 2:
        if torch.allclose(torch.as_tensor(actual[0]).float().cpu(), expected[0].float().cpu(), atol=1e-5):
            return ("the scores are right but tied entries are out of order: torch.topk does not promise an order "
                    "for ties; sort with torch.sort(..., descending=True, stable=True) so the lower index comes first")
    return None


def _returned_for_too_large(case: Case, expected, actual) -> str | None:
    if expected is None and actual is not None:
        return "k is larger than the number of entries: raise ValueError (naming k) instead of returning a result"
    return None


def _search_variant(kind: str):
    def wrong(case: Case):
        queries, keys, k = case.args
        if k > keys.shape[0]:
            return None
        if kind == "dot":
            scores = queries @ keys.T
        else:
            scores = cosine_similarity(queries, keys)
        if kind == "ascending":
            order = torch.sort(scores, dim=1, stable=True).indices[:, :k]
            return scores.gather(1, order), order
        if kind == "ties_reversed":
            flipped = torch.sort(scores.flip(1), dim=1, descending=True, stable=True).indices[:, :k]
            order = scores.shape[1] - 1 - flipped
            return scores.gather(1, order), order
        if kind == "indices_only":
            return top_k(scores, k)[1]
        return top_k(scores, k)

    return wrong


register(_SearchExercise(
    id="6.1",
    title="Retrieval: the k nearest entries by cosine similarity",
    function="nearest_neighbours",
    reference=_search_reference,
    cases=_search_cases,
    diagnostics=[_returned_for_too_large, _ties_out_of_order],
    variants=[
        Variant("that ranks by the dot product q·k; cosine similarity divides by both lengths, "
                "q·k / (|q| |k|), so a long entry does not win just by being long", _search_variant("dot")),
        Variant("the order is ascending: the nearest entry (highest cosine) comes first", _search_variant("ascending")),
        Variant("tied scores must go to the lower index first (a stable sort, descending)",
                _search_variant("ties_reversed")),
        Variant("return both the scores and the indices: (scores (Q, k), indices (Q, k))",
                _search_variant("indices_only")),
    ],
    error_hints=[("out of range", "check k against the number of entries first, and raise ValueError when it "
                  "is larger"),
                 ("selected index k", "check k against the number of entries first, and raise ValueError when "
                  "it is larger")],
    hints=[
        "Normalise every row of queries and keys to length 1 (divide by .norm(dim=1, keepdim=True)); then "
        "queries_n @ keys_n.T is the (Q, N) matrix of cosines. Sort each row in descending order and keep "
        "the first k columns. Check k against N = keys.shape[0] before anything else.",
        "torch.sort(scores, dim=1, descending=True, stable=True) keeps tied scores in index order (torch.topk "
        "does not promise it). scores.gather(1, order) picks the sorted scores. For k > N: "
        "raise ValueError(f'k={k} is larger than the index, which holds {N} entries').",
        "n = keys.shape[0]\nif k > n:\n    raise ValueError(f'k={k} is larger than the index, which holds {n} "
        "entries')\nq = queries / queries.norm(dim=1, keepdim=True)\nkn = keys / keys.norm(dim=1, keepdim=True)\n"
        "scores = q @ kn.T\norder = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]\n"
        "return scores.gather(1, order), order",
    ],
    explanation=(
        "A retrieval system stores one vector per entry and answers a query with the entries whose "
        "vectors point the same way: cosine similarity $q\\cdot k/(\\lVert q\\rVert\\lVert k\\rVert)$ "
        "ignores length, so a long text does not win by being long. Sorting with a stable sort makes "
        "the answer repeatable when scores tie, and asking for more neighbours than the index holds is "
        "a mistake the caller should hear about, not a shorter list."
    ),
))


# ---------------------------------------------------------------------------- 6.2 TF-IDF vectors


def _tfidf_reference(documents, queries):
    return TfidfEncoder().fit(documents).encode(queries)


def _tfidf_cases(gen: torch.Generator, device) -> list[Case]:
    from aigc_course.applications import support

    texts = [q.text for q in support.questions("index")]
    order = torch.randperm(len(texts), generator=gen).tolist()
    documents = [texts[i] for i in order[:20]]
    held = [q.text for q in support.questions("held_out")]
    queries = [held[i] for i in torch.randperm(len(held), generator=gen)[:6].tolist()]
    return [
        Case("20 FAQ questions indexed, 6 held-out questions encoded", (documents, queries)),
        Case("a word repeated in one document counts once in df, twice in tf",
             (["the the kettle", "the lid", "a kettle"], ["the the the kettle", "lid lid"])),
        Case("a query with no known word is the zero vector", (["reset it", "the price"], ["what now?", "reset"])),
    ]


def _tfidf_variant(kind: str):
    def wrong(case: Case):
        documents, queries = case.args
        vocab = sorted({w for d in documents for w in words(d)})
        n = len(documents)
        if kind == "df_counts_occurrences":
            df = Counter(w for d in documents for w in words(d))
        else:
            df = Counter(w for d in documents for w in set(words(d)))
        if kind == "unsmoothed":
            idf = [math.log(n / df[w]) for w in vocab]
        elif kind == "no_plus_one":
            idf = [math.log((1 + n) / (1 + df[w])) for w in vocab]
        else:
            idf = [math.log((1 + n) / (1 + df[w])) + 1 for w in vocab]
        out = torch.zeros(len(queries), len(vocab))
        for row, q in enumerate(queries):
            for w, c in Counter(words(q)).items():
                if w in vocab:
                    out[row, vocab.index(w)] = 1.0 if kind == "binary" else c
        return out if kind == "counts_only" else out * torch.tensor(idf)

    return wrong


register(Exercise(
    id="6.2",
    title="TF-IDF vectors",
    function="tfidf_vectors",
    reference=_tfidf_reference,
    cases=_tfidf_cases,
    variants=[
        Variant("that is the unsmoothed log(N / df(w)); use the smoothed idf(w) = log((1 + N) / (1 + df(w))) + 1",
                _tfidf_variant("unsmoothed")),
        Variant("the idf is log((1 + N) / (1 + df(w))) **+ 1**: without the +1 a word in every document would get "
                "weight 0", _tfidf_variant("no_plus_one")),
        Variant("df(w) counts the *documents* that contain w, each document once, not every occurrence: use "
                "set(words(d))", _tfidf_variant("df_counts_occurrences")),
        Variant("the term frequency is how often the word occurs in the query, not 0 or 1",
                _tfidf_variant("binary")),
        Variant("those are the raw counts: multiply each column by its word's idf", _tfidf_variant("counts_only")),
    ],
    hints=[
        "The vocabulary is every word of the documents, sorted; column j belongs to vocabulary[j]. For each "
        "word, df(w) is the number of documents containing it, and idf(w) = log((1 + N) / (1 + df(w))) + 1. "
        "A query's row holds, for each known word, its count in the query times its idf.",
        "df = Counter(w for d in documents for w in set(words(d))); vocabulary = sorted(df). Then fill a "
        "(len(queries), V) zero tensor from Counter(words(q)), skipping unknown words, and multiply by the "
        "idf tensor.",
        "df = Counter(w for d in documents for w in set(words(d)))\nvocabulary = sorted(df)\n"
        "column = {w: j for j, w in enumerate(vocabulary)}\nn = len(documents)\n"
        "idf = torch.tensor([math.log((1 + n) / (1 + df[w])) + 1 for w in vocabulary])\n"
        "out = torch.zeros(len(queries), len(vocabulary))\nfor i, q in enumerate(queries):\n"
        "    for w, c in Counter(words(q)).items():\n        if w in column:\n            out[i, column[w]] = c\n"
        "return out * idf",
    ],
    explanation=(
        "TF-IDF weighs each word of a text by how often it occurs there (term frequency) and by how rare it "
        "is among the indexed texts (inverse document frequency): 'how' and 'the' occur in many questions "
        "and say little; 'warranty' occurs in few and says a lot. The smoothing (+1 inside the log) acts as "
        "if one extra document held every word, so no weight divides by zero, and the +1 outside keeps "
        "words that occur everywhere from vanishing altogether. This is scikit-learn's TfidfVectorizer with "
        "norm=None; the cosine similarity of 6.1 does the normalising."
    ),
))


# ---------------------------------------------------------------------------- 6.3 generate, then verify


def _verify_reference(sentences):
    return [item.sentence for item in generate_then_verify(sentences)[0]]


def _verify_cases(gen: torch.Generator, device) -> list[Case]:
    g = torch.Generator().manual_seed(int(torch.randint(2**31, (1,), generator=gen)))

    def draw(n):
        out = []
        for _ in range(n):
            a, b = (int(v) for v in torch.randint(0, 100, (2,), generator=g))
            error = int(torch.randint(-2, 3, (1,), generator=g))
            template = ["{a} plus {b} is {s}.", "{a} and {b} make {s}."][int(torch.randint(2, (1,), generator=g))]
            out.append(template.format(a=a, b=b, s=a + b + error))
        return out

    mixed = draw(12) + ["the digits 9305 in order are 0359.", "oops.", "123 plus 4 is 127."]
    order = torch.randperm(len(mixed), generator=g).tolist()
    mixed = [mixed[i] for i in order] + ["qorvit backwards is tivroq."]
    repeated = ["12 plus 5 is 17.", "12 and 5 make 17.", "3 plus 4 is 8.", "3 plus 4 is 7.", "12 plus 5 is 17."]
    return [
        Case("16 generated sentences, some wrong, some invalid", (mixed,)),
        Case("the same problem stated twice (and once wrongly first)", (repeated,)),
        Case("nothing valid", (["the kettle is hot.", "1 plus 1 is 3."],)),
    ]


def _verify_variant(kind: str):
    def wrong(case: Case):
        (sentences,) = case.args
        items = [generate_then_verify([s])[0] for s in sentences]
        if kind == "no_dedup":
            return [s for s, kept in zip(sentences, items, strict=True) if kept]
        if kind == "valid_only":
            from aigc_course.applications.practice import check_item

            return [s for s in sentences if check_item(s).status != "invalid"]
        return sentences

    return wrong


register(Exercise(
    id="6.3",
    title="Generate, then verify",
    function="keep_verified",
    reference=_verify_reference,
    cases=_verify_cases,
    variants=[
        Variant("every correct item was kept, repeats too: keep one item per distinct problem (task and "
                "arguments), the first correct one", _verify_variant("no_dedup")),
        Variant("you kept every valid item, but a valid item can state a wrong answer: keep it only when "
                "item.status == 'correct'", _verify_variant("valid_only")),
        Variant("nothing was filtered: check each sentence with check_item", _verify_variant("all")),
    ],
    hints=[
        "check_item(sentence) returns an Item whose .status is 'correct', 'wrong' or 'invalid', and whose "
        "(task, args) pair names the problem. Keep a sentence when it is correct and its problem is new.",
        "Keep a set of the (item.task, item.args) pairs already kept; loop over the sentences in order.",
        "kept, seen = [], set()\nfor s in sentences:\n    item = check_item(s)\n    if item.status == 'correct' "
        "and (item.task, item.args) not in seen:\n        seen.add((item.task, item.args))\n        "
        "kept.append(s)\nreturn kept",
    ],
    explanation=(
        "The generator proposes and an exact checker disposes: an item reaches the worksheet only if its "
        "stated answer equals the recomputed one. Every kept item is then right by construction; what "
        "the generator's quality decides is how many proposals it takes to fill a worksheet. Keeping each "
        "problem once matters because a model sampled at a low temperature repeats itself."
    ),
))
