"""Chapter 3.1 exercises: causal attention, top-k and top-p filtering, cross-attention with a
padding mask, one beam-search step.

References: :func:`aigc_course.attention.scaled_dot_product_attention`,
:func:`aigc_course.sampling.top_k_filter`, :func:`aigc_course.sampling.top_p_filter` and
:func:`aigc_course.decoding.beam_step`.
"""

from __future__ import annotations

import math

import torch

from aigc_course.attention import scaled_dot_product_attention
from aigc_course.decoding import beam_step
from aigc_course.exercises.core import Case, Exercise, Variant, register
from aigc_course.sampling import top_k_filter, top_p_filter


def _randn(gen: torch.Generator, device, *shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=gen).to(device)


# ---------------------------------------------------------------------------- 3.1.1 causal attention


def _causal_reference(q, k, v):
    return scaled_dot_product_attention(q, k, v, is_causal=True)


def _attention_cases(gen: torch.Generator, device) -> list[Case]:
    cases = []
    for shape in ((2, 6, 8), (2, 3, 5, 16), (1, 7, 4)):
        *lead, t, d = shape
        q, k, v = (_randn(gen, device, *shape) * 2 for _ in range(3))
        cases.append(Case(f"random q, k, v of shape {shape}", (q, k, v)))
    q, k = _randn(gen, device, 2, 5, 8), _randn(gen, device, 2, 5, 8)
    cases.append(Case("d_v != d_k: v of shape (2, 5, 3)", (q, k, _randn(gen, device, 2, 5, 3))))
    cases.append(Case("one token (T = 1)", tuple(_randn(gen, device, 1, 1, 4) for _ in range(3))))
    return cases


def _weights_of(actual):
    return actual[1] if isinstance(actual, (tuple, list)) and len(actual) == 2 else None


def _output_only_diagnostic(case: Case, expected, actual) -> str | None:
    if isinstance(actual, torch.Tensor) and actual.shape == expected[0].shape:
        return "return both the output and the attention weights, as a tuple: `return weights @ v, weights`"
    return None


def _future_diagnostic(case: Case, expected, actual) -> str | None:
    weights = _weights_of(actual)
    if not isinstance(weights, torch.Tensor) or weights.shape != expected[1].shape:
        return None
    w = weights.detach().float().cpu()
    if torch.isnan(w).any():
        i = int(torch.isnan(w).any(-1).nonzero()[0][-1])
        return (f"row {i} of the weights is NaN: every key of query {i} was masked. A causal mask "
                "keeps j <= i, the diagonal included (tril with diagonal=0)")
    t = w.shape[-1]
    future = torch.ones(t, t, dtype=torch.bool).triu(1)
    leak = (w.abs() > 1e-6) & future
    if leak.any():
        worst = int((w.abs() * future).reshape(-1, t * t).amax(0).argmax())
        i, j = divmod(worst, t)  # the future key with the largest weight
        return (f"the mask lets position {i} attend to position {j} (a later position); a causal "
                f"mask keeps key j <= query i only")
    rows = w.sum(-1)
    if not torch.allclose(rows, torch.ones_like(rows), atol=1e-4):
        return ("the attention weights' rows do not sum to 1: take the softmax over the last "
                "dimension (the keys), after masking the scores with -inf")
    return None


def _masked_after_softmax(case: Case):
    q, k, v = case.args
    w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    w = w * torch.ones(q.shape[-2], k.shape[-2], device=q.device).tril()
    return w @ v, w


def _keys_times_queries(case: Case):
    q, k, v = case.args
    t = q.shape[-2]
    mask = torch.ones(t, t, dtype=torch.bool, device=q.device).tril()
    scores = (k @ q.transpose(-2, -1) / math.sqrt(q.shape[-1])).masked_fill(~mask, float("-inf"))
    w = torch.softmax(scores, dim=-1)
    return w @ v, w


register(Exercise(
    id="3.1.1",
    title="Causal (masked) self-attention",
    function="causal_attention",
    reference=_causal_reference,
    cases=_attention_cases,
    diagnostics=[_output_only_diagnostic, _future_diagnostic],
    variants=[
        Variant("missing the 1/√d_k scaling of the scores",
                lambda c: _causal_reference(c.args[0] * math.sqrt(c.args[0].shape[-1]), *c.args[1:])),
        Variant("scaled by 1/d_k instead of 1/√d_k",
                lambda c: _causal_reference(c.args[0] / math.sqrt(c.args[0].shape[-1]), *c.args[1:])),
        Variant("the weights were masked after the softmax; set the scores of future positions to "
                "-inf before the softmax so each row still sums to 1", _masked_after_softmax),
        Variant("the output is weights @ v, not weights @ k",
                lambda c: (_causal_reference(c.args[0], c.args[1], c.args[1])[0],
                           _causal_reference(*c.args)[1])),
        Variant("the scores are q @ kᵀ: row i holds query i's score for each key. k @ qᵀ is its "
                "transpose, so your mask and softmax act on the wrong axis", _keys_times_queries),
    ],
    hints=[
        "scores = Q Kᵀ / √d_k has shape (..., T, T); row i holds query i's score for every key j. "
        "Block the keys j > i, softmax each row, and multiply by V.",
        "torch.ones(T, T, dtype=torch.bool, device=q.device).tril() is True where j <= i; "
        "scores.masked_fill(~mask, float('-inf')) blocks the rest before torch.softmax(..., dim=-1).",
        "d = q.shape[-1]; T = q.shape[-2]\nscores = q @ k.transpose(-2, -1) / math.sqrt(d)\n"
        "mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()\n"
        "weights = torch.softmax(scores.masked_fill(~mask, float('-inf')), dim=-1)\n"
        "return weights @ v, weights",
    ],
    explanation=(
        "The scores are scaled by $1/\\sqrt{d_k}$ so that their variance does not grow with the "
        "head size. Future keys get score $-\\infty$ *before* the softmax, so they receive weight "
        "exactly 0 and every row still sums to 1. Masking after the softmax would leave rows that "
        "sum to less than 1."
    ),
))


# ---------------------------------------------------------------------------- 3.1.2 top-k


def _top_k_cases(gen: torch.Generator, device) -> list[Case]:
    return [
        Case("random logits (3, 10), k=3", (_randn(gen, device, 3, 10) * 3, 3)),
        Case("one row of 20 logits, k=5", (_randn(gen, device, 20) * 3, 5)),
        Case("k=1 keeps only the arg-max", (_randn(gen, device, 2, 8), 1)),
        Case("k larger than the vocabulary keeps everything", (_randn(gen, device, 2, 6), 10)),
        Case("ties with the k-th largest are kept", (torch.tensor([[1.0, 3.0, 2.0, 2.0, 0.5]], device=device), 2)),
    ]


_PROBABILITIES = ("you returned probabilities (a softmax); return the filtered *logits*, with the removed ones "
                  "at -inf: the sampler applies the softmax")


def _looks_like_probabilities(actual, expected) -> bool:
    if not isinstance(actual, torch.Tensor) or actual.shape != expected.shape or not actual.is_floating_point():
        return False
    a = actual.detach().float().cpu()
    return bool((a >= 0).all() and torch.allclose(a.sum(-1), torch.ones(()), atol=1e-4))


def _kept_counts(x: torch.Tensor) -> list[int]:
    return torch.isfinite(x).reshape(-1, x.shape[-1]).sum(-1).tolist()


def _top_k_diagnostic(case: Case, expected, actual) -> str | None:
    logits, k = case.args
    if isinstance(actual, torch.Tensor) and actual.shape[:-1] == expected.shape[:-1] \
            and actual.shape[-1] == min(k, expected.shape[-1]) != expected.shape[-1]:
        return ("you returned only the k largest values (torch.topk(...).values); return logits of the "
                "input's shape, with every removed logit set to -inf")
    if _looks_like_probabilities(actual, expected):
        return _PROBABILITIES
    if not isinstance(actual, torch.Tensor) or actual.shape != expected.shape:
        return None
    a = actual.detach().cpu()
    removed = torch.isinf(expected.cpu())
    if (a[removed] == 0).any():
        return "removed logits were set to 0; set them to -inf so that softmax gives them probability 0"
    kept, want = _kept_counts(a), _kept_counts(expected.cpu())
    if "ties" in case.name and kept != want:
        return ("a logit tied with the k-th largest must be kept too: compare every logit with the "
                "k-th largest value (logits < kth), rather than keeping exactly k indices")
    if kept != want:
        row = next(i for i, (x, y) in enumerate(zip(kept, want, strict=True)) if x != y)
        return f"row {row} keeps {kept[row]} tokens; top-k with k={k} keeps {want[row]}"
    return None


register(Exercise(
    id="3.1.2",
    title="The top-k filter",
    function="top_k",
    reference=top_k_filter,
    cases=_top_k_cases,
    diagnostics=[_top_k_diagnostic],
    variants=[
        Variant("you kept the k smallest logits; keep the k largest",
                lambda c: c.args[0].masked_fill(torch.isinf(top_k_filter(-c.args[0], c.args[1])), float("-inf"))),
        Variant("you removed the k largest logits instead of keeping them",
                lambda c: c.args[0].masked_fill(torch.isfinite(top_k_filter(c.args[0], c.args[1])), float("-inf"))),
        Variant(_PROBABILITIES, lambda c: torch.softmax(top_k_filter(*c.args), -1)),
    ],
    hints=[
        "Find the k-th largest logit of each row and remove (set to -inf) every logit below it.",
        "torch.topk(logits, k, dim=-1).values[..., -1:] is the k-th largest value, shaped to "
        "broadcast; k may exceed the vocabulary size, so use min(k, V).",
        "k = min(k, logits.shape[-1])\nkth = torch.topk(logits, k, dim=-1).values[..., -1:]\n"
        "return logits.masked_fill(logits < kth, float('-inf'))",
    ],
    explanation=(
        "Comparing each logit with the k-th largest value (instead of scattering k indices) keeps "
        "all logits tied with it, so the result does not depend on how the sort breaks ties, "
        "and works for any leading shape. `masked_fill` returns a new tensor, leaving the input "
        "unchanged."
    ),
))


# ---------------------------------------------------------------------------- 3.1.3 top-p


def _top_p_cases(gen: torch.Generator, device) -> list[Case]:
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.2, 0.5, 0.3]], device=device)
    return [
        Case("random logits (3, 12), p=0.9", (_randn(gen, device, 3, 12) * 2, 0.9)),
        Case("random logits (4, 30), p=0.5", (_randn(gen, device, 4, 30) * 2, 0.5)),
        Case("probabilities [0.5, 0.3, 0.2], p=0.45 keeps one token", (probs.log(), 0.45)),
        Case("probabilities [0.5, 0.3, 0.2], p=0.6 keeps two tokens", (probs.log(), 0.6)),
        Case("tiny p keeps only the most likely token", (_randn(gen, device, 2, 9), 1e-4)),
        Case("p=1 keeps every token", (_randn(gen, device, 2, 7), 1.0)),
    ]


def _top_p_diagnostic(case: Case, expected, actual) -> str | None:
    if _looks_like_probabilities(actual, expected):
        return _PROBABILITIES
    if not isinstance(actual, torch.Tensor) or actual.shape != expected.shape:
        return None
    a = actual.detach().cpu().reshape(-1, actual.shape[-1])
    if (~torch.isfinite(a)).all(-1).any():
        row = int((~torch.isfinite(a)).all(-1).nonzero()[0])
        return (f"row {row} has no token left: the most likely token must always be kept. Keep a "
                "token while the mass of the tokens before it is < p: the token that crosses p "
                "belongs to the nucleus")
    if (a[torch.isinf(expected.cpu().reshape(a.shape))] == 0).any():
        return "removed logits were set to 0; set them to -inf so that softmax gives them probability 0"
    return None


def _cumsum_le_p(case: Case):
    logits, p = case.args
    probs = torch.softmax(logits, -1)
    sorted_probs, order = torch.sort(probs, -1, descending=True)
    keep_sorted = sorted_probs.cumsum(-1) <= p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))


def _unsorted_back(case: Case):
    logits, p = case.args
    filtered = top_p_filter(logits, p)
    return torch.sort(filtered, -1, descending=True).values


def _top_p_variant(kind: str):
    def wrong(case: Case):
        logits, p = case.args
        values = logits if kind == "no_softmax" else torch.softmax(logits, -1)
        sorted_values, order = torch.sort(values, -1, descending=kind != "ascending")
        keep_sorted = (sorted_values.cumsum(-1) - sorted_values) < p
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        return logits.masked_fill(~keep, float("-inf"))

    return wrong


def _cumsum_le_p_kept_first(case: Case):
    logits, p = case.args
    out = _cumsum_le_p(case)
    return torch.where(logits == logits.max(-1, keepdim=True).values, logits, out)


register(Exercise(
    id="3.1.3",
    title="The top-p (nucleus) filter",
    function="top_p",
    reference=top_p_filter,
    cases=_top_p_cases,
    diagnostics=[_top_p_diagnostic],
    variants=[
        Variant("you dropped the token that crosses p: the nucleus is the smallest set whose "
                "probability *reaches* p, so keep a token while the mass of the tokens before it is < p",
                _cumsum_le_p),
        Variant("you dropped the token that crosses p: the nucleus is the smallest set whose "
                "probability *reaches* p, so keep a token while the mass of the tokens before it is < p",
                _cumsum_le_p_kept_first),
        Variant("the result is still in sorted order: scatter the keep-mask back to the tokens' "
                "original positions", _unsorted_back),
        Variant("the nucleus is measured in probability: apply the softmax before the cumulative sum, "
                "not to the raw logits", _top_p_variant("no_softmax")),
        Variant("sort in descending order: the nucleus is made of the most likely tokens",
                _top_p_variant("ascending")),
        Variant(_PROBABILITIES, lambda c: torch.softmax(top_p_filter(*c.args), -1)),
    ],
    hints=[
        "Turn logits into probabilities, sort them in descending order, and keep the shortest "
        "prefix whose total probability reaches p. Then put the decision back in the original order.",
        "The mass *before* sorted token i is cumsum - sorted_probs; keep token i when that is < p "
        "(so the first token is always kept). `torch.zeros_like(keep).scatter(-1, order, keep)` "
        "undoes the sort.",
        "probs = torch.softmax(logits, dim=-1)\nsorted_probs, order = torch.sort(probs, dim=-1, "
        "descending=True)\nkeep_sorted = (sorted_probs.cumsum(-1) - sorted_probs) < p\n"
        "keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)\n"
        "return logits.masked_fill(~keep, float('-inf'))",
    ],
    explanation=(
        "Keeping a token while the probability of the tokens *before* it is below $p$ gives the "
        "smallest prefix of the sorted distribution whose mass reaches $p$, and always keeps the "
        "most likely token. (The package's `top_p_filter` also keeps tied tokens together; random "
        "logits have no ties.)"
    ),
))


# ---------------------------------------------------------------------------- 3.1.4 cross-attention with padding


def _cross_reference(x, memory, memory_mask, num_heads):
    b, t, c = x.shape
    s, d = memory.shape[1], c // num_heads
    q = x.reshape(b, t, num_heads, d).transpose(1, 2)  # (B, H, T, d)
    kv = memory.reshape(b, s, num_heads, d).transpose(1, 2)  # (B, H, S, d)
    out, weights = scaled_dot_product_attention(q, kv, kv, mask=memory_mask[:, None, None, :])
    return out.transpose(1, 2).reshape(b, t, c), weights


def _cross_cases(gen: torch.Generator, device) -> list[Case]:
    cases = []
    for name, (b, t, s, c, h, lengths) in (
        ("2 targets of 4 tokens, memory of 6 with 2 and 3 padded, 2 heads", (2, 4, 6, 8, 2, (4, 3))),
        ("no padding, 4 heads", (1, 3, 5, 16, 4, (5,))),
        ("one query, one real memory token", (2, 1, 4, 6, 3, (1, 4))),
        ("one head", (3, 5, 7, 4, 1, (7, 2, 5))),
    ):
        x, memory = _randn(gen, device, b, t, c) * 2, _randn(gen, device, b, s, c) * 2
        mask = (torch.arange(s)[None, :] < torch.tensor(lengths)[:, None]).to(device)
        cases.append(Case(name, (x, memory, mask, h)))
    return cases


def _cross_variant(kind: str):
    def wrong(case: Case):
        x, memory, mask, h = case.args
        if kind == "inverted":
            return _cross_reference(x, memory, ~mask | (~mask).all(-1, keepdim=True), h)
        if kind == "no_mask":
            return _cross_reference(x, memory, torch.ones_like(mask), h)
        if kind == "one_head":
            out, w = scaled_dot_product_attention(x, memory, memory, mask=mask[:, None, :])
            return out, w[:, None].expand(-1, h, -1, -1)
        b, t, c = x.shape  # "merge": heads put back with a reshape but no transpose
        out, w = _cross_reference(x, memory, mask, h)
        per_head = out.reshape(b, t, h, c // h).transpose(1, 2)  # (B, H, T, d), undo the right merge
        return per_head.reshape(b, t, c), w
    return wrong


def _after_softmax(case: Case):
    x, memory, mask, h = case.args
    out, w = _cross_reference(x, memory, torch.ones_like(mask), h)
    w = w * mask[:, None, None, :]
    b, t, c = x.shape
    v = memory.reshape(b, -1, h, c // h).transpose(1, 2)
    return (w @ v).transpose(1, 2).reshape(b, t, c), w


register(Exercise(
    id="3.1.4",
    title="Cross-attention with a padding mask",
    function="masked_cross_attention",
    reference=_cross_reference,
    cases=_cross_cases,
    variants=[
        Variant("the padding tokens were attended to: give every key where memory_mask is False the score "
                "-inf before the softmax", _cross_variant("no_mask")),
        Variant("the mask is inverted: memory_mask is True for real tokens (attend) and False for padding",
                _cross_variant("inverted")),
        Variant("the weights were masked after the softmax, so rows no longer sum to 1; mask the scores "
                "(-inf) before the softmax", _after_softmax),
        Variant("the heads were not split: reshape (B, T, C) to (B, H, T, C/H) and attend in C/H dimensions "
                "per head", _cross_variant("one_head")),
        Variant("the heads were merged back in the wrong order: transpose (B, H, T, d) to (B, T, H, d) before "
                "reshaping to (B, T, C)", _cross_variant("merge")),
    ],
    hints=[
        "Split C into num_heads heads of d = C / H dimensions for x (the queries) and memory (keys and "
        "values), compute softmax(q kᵀ / √d) per head with the padded keys blocked, then merge the heads.",
        "x.reshape(B, T, H, d).transpose(1, 2) gives (B, H, T, d). memory_mask[:, None, None, :] has "
        "shape (B, 1, 1, S) and broadcasts over heads and queries: scores.masked_fill(~mask, -inf).",
        "B, T, C = x.shape; S = memory.shape[1]; d = C // num_heads\n"
        "q = x.reshape(B, T, num_heads, d).transpose(1, 2)\n"
        "kv = memory.reshape(B, S, num_heads, d).transpose(1, 2)\n"
        "scores = q @ kv.transpose(-2, -1) / math.sqrt(d)\n"
        "scores = scores.masked_fill(~memory_mask[:, None, None, :], float('-inf'))\n"
        "weights = torch.softmax(scores, dim=-1)\n"
        "return (weights @ kv).transpose(1, 2).reshape(B, T, C), weights",
    ],
    explanation=(
        "In the decoder's cross-attention the queries come from the target and the keys and values "
        "from the encoder's memory. A batch of sources is padded to one length, so the padded keys get "
        "score $-\\infty$ before the softmax: they receive weight exactly 0, every row still sums to 1, "
        "and the output does not depend on how much padding there is."
    ),
))


# ---------------------------------------------------------------------------- 3.1.5 one beam-search step


def _beam_cases(gen: torch.Generator, device) -> list[Case]:
    cases = []
    for name, (b, k, v) in (("2 rows, 3 beams, 5 tokens", (2, 3, 5)), ("1 row, 2 beams, 8 tokens", (1, 2, 8)),
                            ("one beam is greedy", (3, 1, 6)), ("more beams than tokens", (2, 4, 3))):
        scores = -torch.rand(b, k, generator=gen).mul(3).sort(dim=1, descending=True).values
        log_probs = torch.log_softmax(torch.randn(b, k, v, generator=gen) * 2, dim=-1)
        cases.append(Case(name, (scores.to(device), log_probs.to(device))))
    return cases


def _best_per_beam(case: Case):
    scores, log_probs = case.args
    best, token = log_probs.max(-1)
    new_scores, order = (scores + best).sort(dim=1, descending=True)
    return new_scores, order, token.gather(1, order)


def _without_scores(case: Case):
    scores, log_probs = case.args
    zero = torch.zeros_like(scores)
    new, beam, token = beam_step(zero, log_probs)
    return new + scores.gather(1, beam), beam, token


def _modulo_k(case: Case):
    scores, log_probs = case.args
    b, k, v = log_probs.shape
    new, flat = (scores[..., None] + log_probs).reshape(b, k * v).topk(k, dim=1)
    return new, flat % k, flat % v


register(Exercise(
    id="3.1.5",
    title="One beam-search step",
    function="beam_step",
    reference=beam_step,
    cases=_beam_cases,
    variants=[
        Variant("you kept the best token of each beam; the k best extensions may come from the same "
                "beam: rank all k * V of them together", _best_per_beam),
        Variant("the extensions were ranked by the new token's log-probability alone; rank by the "
                "prefix's score plus it", _without_scores),
        Variant("the beam of flat index i is i // V (each beam owns V consecutive candidates), not i % k",
                _modulo_k),
    ],
    hints=[
        "Add each prefix's score to the log-probabilities of its next token: (B, k, V) candidates. "
        "Flatten the last two dimensions and keep the k best of each row.",
        "(scores[..., None] + log_probs).reshape(B, k * V).topk(k, dim=1) gives values and flat "
        "indices; flat index i is beam i // V and token i % V.",
        "B, k, V = log_probs.shape\n"
        "new_scores, flat = (scores[..., None] + log_probs).reshape(B, k * V).topk(k, dim=1)\n"
        "return new_scores, flat // V, flat % V",
    ],
    explanation=(
        "Beam search ranks every one-token extension of every kept prefix by its total log-probability "
        "$\\sum_t \\log P(y_t \\mid y_{<t}, x)$ and keeps the best $k$. Two of them may extend the same "
        "prefix, and a prefix whose best token is not the best overall can still win later: that is "
        "what greedy decoding ($k = 1$) misses."
    ),
))
