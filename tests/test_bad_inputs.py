"""The bad-input matrix (issue 21): every public function and shipped pipeline, fed what a
hostile but fair user would feed it -- wrong rank, dtype and shape, NaN and inf, empty,
out-of-range and wrong-type arguments.

Each row of :data:`PROBES` is one call with one bad argument, and what must happen:

* :func:`error` -- a ``ValueError`` or ``TypeError`` whose message names the argument;
* :func:`documented` -- a result the function's docstring promises (for example zeros for a
  fully masked attention row), checked by a predicate.

A row whose fix belongs to another work package carries ``owner=`` and runs as ``xfail``
(naming the package) until that fix lands. ``scripts/bad_input_table.py`` counts the rows.
Inputs are tiny and the shipped checkpoints are loaded once each, so the file runs in seconds.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aigc_course import (
    attention,
    data,
    gan,
    get_device,
    llama,
    metrics,
    multimodal,
    pretrained,
    sampling,
    scaling,
    seed_everything,
    vae,
)
from aigc_course import diffusion as diff
from aigc_course.tokenizers import ByteBPETokenizer, CharTokenizer, tokenizer_from_dict

NAN, INF = float("nan"), float("inf")
# A row may name an ``owner``: the work whose fix has not landed yet. It then runs as xfail,
# and is flipped to a plain row when the fix lands. No row has one today.


@dataclass(frozen=True)
class Probe:
    module: str  # the table's row: "attention", "diffusion", ...
    target: str  # the public name called
    case: str  # what is wrong with the call
    call: Callable[[], object]
    arg: str | None = None  # error rows: the argument the message must name
    check: Callable[[object], bool] | None = None  # documented rows: the promised result
    owner: str | None = None  # who owns the fix, when it is not this package (xfail until it lands)

    @property
    def id(self) -> str:
        return f"{self.module}:{self.target}:{self.case}"

    @property
    def kind(self) -> str:
        return "documented" if self.check is not None else "error"


def error(module, target, case, call, arg, owner=None) -> Probe:
    return Probe(module, target, case, call, arg=arg, owner=owner)


def documented(module, target, case, call, check, owner=None) -> Probe:
    return Probe(module, target, case, call, check=check, owner=owner)


def outcome(probe: Probe) -> str:
    """``"pass"``, or one line saying how the call broke its contract."""
    try:
        result = probe.call()
    except (ValueError, TypeError) as err:
        if probe.check is not None:
            return f"raised {type(err).__name__}: {err}"
        if not re.search(rf"(?<!\w){re.escape(probe.arg)}(?!\w)", str(err)):
            return f"{type(err).__name__} does not name {probe.arg!r}: {err}"
        return "pass"
    except Exception as err:  # noqa: BLE001 -- any other exception is the finding
        return f"raised {type(err).__name__}, not ValueError/TypeError: {str(err)[:200]}"
    if probe.check is None:
        return f"no error; returned {_summary(result)}"
    return "pass" if probe.check(result) else f"documented result not met: {_summary(result)}"


def _summary(result) -> str:
    if isinstance(result, torch.Tensor):
        return f"tensor {tuple(result.shape)} {result.dtype}, NaN: {bool(torch.isnan(result).any())}"
    return repr(result)[:120]


# --------------------------------------------------------------------------- tiny inputs and helpers


def qkv(t_q=3, t_k=4, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, t_q, d, generator=g), torch.randn(2, t_k, d, generator=g), torch.randn(2, t_k, 5, generator=g)


def raised(kind: type[Exception], fn):
    """The ``kind`` exception ``fn()`` raised, or None: for rows whose documented result is an error
    other than ValueError/TypeError (an unavailable device is a RuntimeError, as in get_device)."""
    try:
        fn()
    except kind as err:
        return err
    return None


def all_zero(t) -> bool:
    return isinstance(t, torch.Tensor) and bool(torch.all(t == 0))


def finite(t) -> bool:
    return isinstance(t, torch.Tensor) and bool(torch.isfinite(t).all())


def in_unit_range(t) -> bool:
    return finite(t) and bool(((t >= 0) & (t <= 1)).all())


@functools.cache
def load(name: str):
    return pretrained.load(name, device="cpu")


@functools.cache
def tiny_vae():
    torch.manual_seed(0)
    return vae.make_vae("digits", latent_dim=2, hidden=8)


@functools.cache
def tiny_clip():
    torch.manual_seed(0)
    return multimodal.TinyCLIP(multimodal.Vocabulary.from_templates(), embed_dim=4, channels=2, hidden=4)


@functools.cache
def tiny_denoiser():
    torch.manual_seed(0)
    return diff.MLPDenoiser(hidden=8, num_blocks=1).eval()


@contextlib.contextmanager
def environment(name: str, value: str):
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


def with_env(name, value, fn):
    def call():
        with environment(name, value):
            return fn()
    return call


digit = torch.zeros(2, 1, 8, 8)
nan_digit = torch.full((2, 1, 8, 8), NAN)
points = torch.zeros(4, 2)
sched = diff.NoiseSchedule("linear", 100)
eps2 = torch.zeros(2, 2)

# --------------------------------------------------------------------------- attention

KERNELS = {
    "scaled_dot_product_attention": lambda q, k, v, **kw: attention.scaled_dot_product_attention(q, k, v, **kw)[0],
    "blockwise_attention": attention.blockwise_attention,
    **{f"attend[{b}]": functools.partial(attention.attend, backend=b) for b in attention.BACKENDS},
}
Q, K, V = qkv()  # (2, 3, 8), (2, 4, 8), (2, 4, 5)
HIDE_ROW_1 = torch.tensor([[True] * 4, [False] * 4, [True] * 4])


def kernel_probes(name: str, kernel) -> list[Probe]:
    """The same rows for every attention kernel: one contract (see aigc_course.attention)."""

    def bad(case, arg, *args, **kw):
        return error("attention", name, case, lambda: kernel(*args, **kw), arg)

    def promise(case, check, *args, **kw):
        return documented("attention", name, case, lambda: kernel(*args, **kw), check)

    return [
        bad("q is a list", "q", Q.tolist(), K, V),
        bad("q of rank 1", "q", Q[0, 0], K, V),
        bad("integer q, k, v", "q", Q.long(), K.long(), V.long()),
        bad("k of another dtype", "k", Q, K.double(), V),
        bad("d_k mismatch", "k", Q, K[..., :5], V),
        bad("k and v key counts differ", "v", Q, K, V[:, :2]),
        bad("d_k = 0", "d_k", Q[..., :0], K[..., :0], V),
        bad("batch dims do not broadcast", "batch", Q, torch.zeros(3, 4, 8), torch.zeros(3, 4, 5)),
        bad("mask of the wrong T_k", "mask", Q, K, V, mask=torch.ones(3, 5, dtype=torch.bool)),
        bad("mask of rank 1", "mask", Q, K, V, mask=torch.ones(4, dtype=torch.bool)),
        bad("mask larger than the batch", "mask", Q, K, V, mask=torch.ones(3, 3, 4, dtype=torch.bool)),
        bad("integer mask", "mask", Q, K, V, mask=torch.ones(3, 4, dtype=torch.long)),
        bad("mask is a list", "mask", Q, K, V, mask=[[True] * 4] * 3),
        bad("is_causal is a string", "is_causal", Q, K, V, is_causal="yes"),
        documented("attention", name, "a fully masked row gives zeros (as torch SDPA)",
                   lambda: kernel(Q, K, V, mask=HIDE_ROW_1)[:, 1], all_zero),
        documented("attention", name, "a -inf float row gives zeros (as torch SDPA)",
                   lambda: kernel(Q, K, V, mask=torch.where(HIDE_ROW_1, 0.0, -INF))[:, 1], all_zero),
        promise("T_k = 0 gives zeros (as torch SDPA)", all_zero, Q, K[:, :0], V[:, :0]),
        documented("attention", name, "a (T_q, 1) mask broadcasts like torch SDPA",
                   lambda: kernel(Q, K, V, mask=torch.ones(3, 1, dtype=torch.bool)) - F.scaled_dot_product_attention(Q, K, V),
                   lambda d: float(d.abs().max()) < 1e-5),
        promise("NaN q propagates (values are not scanned)", lambda t: bool(torch.isnan(t).all()),
                torch.full((2, 3, 8), NAN), K, V),
    ]


def attention_probes() -> list[Probe]:
    rows = [row for name, kernel in KERNELS.items() for row in kernel_probes(name, kernel)]
    for bad in (NAN, INF, -0.1, 1.0, True, "0.1"):
        rows.append(error("attention", "scaled_dot_product_attention", f"dropout_p={bad!r}",
                          lambda bad=bad: attention.scaled_dot_product_attention(Q, K, V, dropout_p=bad), "dropout_p"))
        rows.append(error("attention", "attend[sdpa]", f"dropout_p={bad!r}",
                          lambda bad=bad: attention.attend(Q, K, V, dropout_p=bad), "dropout_p"))
    for bad in (0, 2.5, True, -1):
        rows.append(error("attention", "blockwise_attention", f"block_size={bad!r}",
                          lambda bad=bad: attention.blockwise_attention(Q, K, V, block_size=bad), "block_size"))
    rows += [
        error("attention", "attend", "dropout with the blockwise backend",
              lambda: attention.attend(Q, K, V, dropout_p=0.1, backend="blockwise"), "dropout_p"),
        error("attention", "attend", "unknown backend", lambda: attention.attend(Q, K, V, backend="flash"), "backend"),
        error("attention", "causal_mask", "t_q=-1", lambda: attention.causal_mask(-1), "t_q"),
        error("attention", "causal_mask", "t_q=2.5", lambda: attention.causal_mask(2.5), "t_q"),
        error("attention", "causal_mask", "t_k=True", lambda: attention.causal_mask(3, True), "t_k"),
        documented("attention", "causal_mask", "t_q=0 is an empty mask", lambda: attention.causal_mask(0),
                   lambda m: m.shape == (0, 0)),
        error("attention", "MultiHeadAttention", "d_model not divisible", lambda: attention.MultiHeadAttention(30, 4), "d_model"),
        error("attention", "MultiHeadAttention", "num_heads=0", lambda: attention.MultiHeadAttention(32, 0), "num_heads"),
        error("attention", "MultiHeadAttention", "dropout=nan", lambda: attention.MultiHeadAttention(32, 4, dropout=NAN),
              "dropout"),
        error("attention", "MultiHeadAttention", "unknown backend", lambda: attention.MultiHeadAttention(32, 4, backend="x"),
              "backend"),
        error("attention", "MultiHeadAttention.forward", "x of rank 2",
              lambda: attention.MultiHeadAttention(16, 2)(torch.zeros(5, 16)), "x"),
        error("attention", "MultiHeadAttention.forward", "mask of the wrong shape",
              lambda: attention.MultiHeadAttention(16, 2)(torch.zeros(1, 5, 16), mask=torch.ones(4, 4, dtype=torch.bool)),
              "mask"),
    ]
    return rows


# --------------------------------------------------------------------------- LLaMA (book 2.2.1)


@functools.cache
def tiny_llama():
    torch.manual_seed(0)
    return llama.Llama(llama.LlamaConfig(vocab_size=16, block_size=8, n_layer=1, n_head=2, n_embd=8))


def llama_probes() -> list[Probe]:
    x, w, pos = torch.zeros(2, 3, 8), torch.ones(8), torch.arange(3)
    q, kv = torch.zeros(1, 4, 3, 8), torch.zeros(1, 2, 3, 8)
    ids = torch.arange(100) % 16

    def train(**kw):
        return lambda: llama.train_language_model(tiny_llama(), **{"train_ids": ids, "steps": 1, "batch_size": 2,
                                                                   "progress": False, **kw})

    rows = [
        error("attention", "repeat_kv_heads", "H_kv not dividing num_heads", lambda: attention.repeat_kv_heads(kv, 3), "x"),
        error("attention", "repeat_kv_heads", "x of rank 3", lambda: attention.repeat_kv_heads(kv[0], 2), "x"),
        error("attention", "repeat_kv_heads", "x is a list", lambda: attention.repeat_kv_heads(kv.tolist(), 2), "x"),
        error("attention", "repeat_kv_heads", "num_heads=0", lambda: attention.repeat_kv_heads(kv, 0), "num_heads"),
        error("attention", "repeat_kv_heads", "num_heads=True", lambda: attention.repeat_kv_heads(kv, True), "num_heads"),
        error("attention", "MultiHeadAttention", "num_kv_heads=3 does not divide 4",
              lambda: attention.MultiHeadAttention(32, 4, num_kv_heads=3), "num_kv_heads"),
        error("attention", "MultiHeadAttention", "num_kv_heads=0",
              lambda: attention.MultiHeadAttention(32, 4, num_kv_heads=0), "num_kv_heads"),
        error("attention", "MultiHeadAttention", "rotary is an int", lambda: attention.MultiHeadAttention(32, 4, rotary=5),
              "rotary"),
        error("attention", "MultiHeadAttention.forward", "a KVCache of the wrong number of heads",
              lambda: attention.MultiHeadAttention(16, 4, num_kv_heads=2)(
                  torch.zeros(1, 1, 16), cache=attention.KVCache(1, 4, 4, 4, "cpu", torch.float32)), "num_kv_heads"),
        error("llama", "rms_norm", "x is a list", lambda: llama.rms_norm(x.tolist(), w), "x"),
        error("llama", "rms_norm", "integer x", lambda: llama.rms_norm(x.long(), w), "x"),
        error("llama", "rms_norm", "weight of the wrong size", lambda: llama.rms_norm(x, torch.ones(5)), "weight"),
        error("llama", "rms_norm", "eps=0", lambda: llama.rms_norm(x, w, 0.0), "eps"),
        error("llama", "rms_norm", "eps=nan", lambda: llama.rms_norm(x, w, NAN), "eps"),
        documented("llama", "rms_norm", "NaN x propagates (values are not scanned)",
                   lambda: llama.rms_norm(torch.full((2, 8), NAN), w), lambda t: bool(torch.isnan(t).all())),
        error("llama", "rope", "odd head size", lambda: llama.rope(torch.zeros(3, 7), pos), "head_dim"),
        error("llama", "rope", "float positions", lambda: llama.rope(torch.zeros(3, 8), pos.float()), "positions"),
        error("llama", "rope", "positions is a list", lambda: llama.rope(torch.zeros(3, 8), [0, 1, 2]), "positions"),
        error("llama", "rope", "T differs from len(positions)", lambda: llama.rope(torch.zeros(4, 8), pos), "x"),
        error("llama", "rope", "integer x", lambda: llama.rope(torch.zeros(3, 8, dtype=torch.long), pos), "x"),
        error("llama", "rope", "base=1", lambda: llama.rope(torch.zeros(3, 8), pos, 1.0), "base"),
        error("llama", "rope", "base=nan", lambda: llama.rope(torch.zeros(3, 8), pos, NAN), "base"),
        error("llama", "rope_frequencies", "head_dim=True", lambda: llama.rope_frequencies(True), "head_dim"),
        error("llama", "rope_frequencies", "base=inf", lambda: llama.rope_frequencies(8, INF), "base"),
        error("llama", "RotaryEmbedding", "max_positions=0", lambda: llama.RotaryEmbedding(8, max_positions=0),
              "max_positions"),
        error("llama", "RMSNorm", "dim=0", lambda: llama.RMSNorm(0), "dim"),
        error("llama", "RMSNorm", "eps=-1", lambda: llama.RMSNorm(8, -1.0), "eps"),
        error("llama", "SwiGLU", "hidden=0", lambda: llama.SwiGLU(8, 0), "hidden"),
        error("llama", "swiglu_hidden", "multiple_of=0", lambda: llama.swiglu_hidden(64, 0), "multiple_of"),
        error("llama", "grouped_query_attention", "q of rank 3", lambda: llama.grouped_query_attention(q[0], kv, kv), "q"),
        error("llama", "grouped_query_attention", "H_kv=3 does not divide H=4",
              lambda: llama.grouped_query_attention(q, torch.zeros(1, 3, 3, 8), torch.zeros(1, 3, 3, 8)), "H_kv"),
        error("llama", "grouped_query_attention", "k and v of different head counts",
              lambda: llama.grouped_query_attention(q, kv, kv[:, :1]), "v"),
        error("llama", "grouped_query_attention", "d_k mismatch",
              lambda: llama.grouped_query_attention(q, kv[..., :5], kv), "k"),
        error("llama", "grouped_query_attention", "is_causal is a string",
              lambda: llama.grouped_query_attention(q, kv, kv, is_causal="yes"), "is_causal"),
        error("llama", "LlamaConfig", "n_kv_head=3 does not divide n_head=4", lambda: llama.LlamaConfig(n_kv_head=3),
              "n_kv_head"),
        error("llama", "LlamaConfig", "heads of odd size", lambda: llama.LlamaConfig(n_embd=12, n_head=4), "n_embd"),
        error("llama", "LlamaConfig", "rope_base=nan", lambda: llama.LlamaConfig(rope_base=NAN), "rope_base"),
        error("llama", "LlamaConfig", "norm_eps=0", lambda: llama.LlamaConfig(norm_eps=0), "norm_eps"),
        error("llama", "LlamaConfig", "n_embd=True", lambda: llama.LlamaConfig(n_embd=True), "n_embd"),
        error("llama", "LlamaConfig", "tie_embeddings='yes'", lambda: llama.LlamaConfig(tie_embeddings="yes"),
              "tie_embeddings"),
        error("llama", "Llama", "config is a dict", lambda: llama.Llama({"vocab_size": 16}), "config"),
        error("llama", "Llama.forward", "float idx", lambda: tiny_llama()(torch.zeros(1, 3)), "idx"),
        error("llama", "Llama.forward", "longer than block_size", lambda: tiny_llama()(torch.zeros(1, 9, dtype=torch.long)),
              "block_size"),
        error("llama", "Llama.generate", "max_new_tokens=-1",
              lambda: tiny_llama().generate(torch.zeros(1, 2, dtype=torch.long), -1), "max_new_tokens"),
        error("llama", "Llama.with_block_size", "block_size=0", lambda: tiny_llama().with_block_size(0), "block_size"),
        error("llama", "Llama.from_huggingface", "a model name instead of a model",
              lambda: llama.Llama.from_huggingface("meta-llama/Llama-2-7b-hf"), "model"),
        error("llama", "kv_cache_bytes", "model is a string", lambda: llama.kv_cache_bytes("llama"), "model"),
        error("llama", "kv_cache_bytes", "batch_size=0", lambda: llama.kv_cache_bytes(tiny_llama(), 0), "batch_size"),
        error("llama", "train_language_model", "steps=0", train(steps=0), "steps"),
        error("llama", "train_language_model", "lr=nan", train(lr=NAN), "lr"),
        error("llama", "train_language_model", "weight_decay=-1", train(weight_decay=-1.0), "weight_decay"),
        error("llama", "train_language_model", "seed=True", train(seed=True), "seed"),
        error("llama", "train_language_model", "float train_ids", train(train_ids=ids.float()), "train_ids"),
        error("llama", "train_language_model", "train_ids shorter than the context", train(train_ids=ids[:5]), "train_ids"),
        error("llama", "train_language_model", "token id beyond the vocabulary", train(train_ids=ids + 16), "train_ids"),
        error("llama", "train_language_model", "model is a string",
              lambda: llama.train_language_model("llama", ids, steps=1, batch_size=2), "model"),
        error("llama", "loss_by_position", "length beyond block_size", lambda: llama.loss_by_position(tiny_llama(), ids, 9),
              "length"),
        error("llama", "loss_by_position", "ids of rank 2", lambda: llama.loss_by_position(tiny_llama(), ids.view(10, 10), 4),
              "ids"),
        error("llama", "loss_by_position", "token id beyond the vocabulary",
              lambda: llama.loss_by_position(tiny_llama(), ids + 16, 4), "ids"),
        error("llama", "loss_by_position", "max_windows=0", lambda: llama.loss_by_position(tiny_llama(), ids, 4, max_windows=0),
              "max_windows"),
    ]
    return rows


# --------------------------------------------------------------------------- sampling and tokenizers (decoding owns the fixes)

logits = torch.tensor([[1.0, 2.0, 0.5]])


def sampling_probes() -> list[Probe]:
    rows = [
        error("sampling", "greedy", "integer logits", lambda: sampling.greedy(torch.tensor([[1, 2]])), "logits"),
        error("sampling", "greedy", "V = 0", lambda: sampling.greedy(torch.zeros(2, 0)), "logits"),
        error("sampling", "greedy", "NaN logits", lambda: sampling.greedy(torch.tensor([[1.0, NAN]])), "logits"),
        error("sampling", "sample", "temperature=-1", lambda: sampling.sample(logits, temperature=-1.0), "temperature"),
        error("sampling", "sample", "temperature=nan", lambda: sampling.sample(logits, temperature=NAN), "temperature"),
        error("sampling", "sample", "temperature=inf", lambda: sampling.sample(logits, temperature=INF), "temperature"),
        documented("sampling", "sample", "temperature=0 is greedy", lambda: sampling.sample(logits, temperature=0),
                   lambda t: t.tolist() == [1]),
        error("sampling", "apply_temperature", "temperature=0", lambda: sampling.apply_temperature(logits, 0.0), "temperature"),
        error("sampling", "top_k_filter", "k=0", lambda: sampling.top_k_filter(logits, 0), "k"),
        error("sampling", "top_k_filter", "k=2.5", lambda: sampling.top_k_filter(logits, 2.5), "k"),
        error("sampling", "top_k_filter", "k=True", lambda: sampling.top_k_filter(logits, True), "k"),
        documented("sampling", "top_k_filter", "k > V keeps every logit", lambda: sampling.top_k_filter(logits, 10),
                   lambda t: bool(torch.equal(t, logits))),
        error("sampling", "top_p_filter", "p=0", lambda: sampling.top_p_filter(logits, 0.0), "p"),
        error("sampling", "top_p_filter", "p=1.5", lambda: sampling.top_p_filter(logits, 1.5), "p"),
        error("sampling", "top_p_filter", "p=nan", lambda: sampling.top_p_filter(logits, NAN), "p"),
        documented("sampling", "top_p_filter", "p=1 keeps every logit", lambda: sampling.top_p_filter(logits, 1.0),
                   lambda t: bool(torch.equal(t, logits))),
    ]
    tok = CharTokenizer(["a", "b"])
    rows += [
        error("tokenizers", "CharTokenizer", "empty chars", lambda: CharTokenizer([]), "chars"),
        error("tokenizers", "CharTokenizer", "repeated chars", lambda: CharTokenizer(["a", "a"]), "chars"),
        error("tokenizers", "CharTokenizer.train", "empty text", lambda: CharTokenizer.train(""), "text"),
        error("tokenizers", "CharTokenizer.encode", "text is bytes", lambda: tok.encode(b"ab"), "text"),
        error("tokenizers", "CharTokenizer.encode", "unknown character", lambda: tok.encode("abc"), "character"),
        error("tokenizers", "CharTokenizer.decode", "id out of range", lambda: tok.decode([0, 7]), "ids"),
        error("tokenizers", "CharTokenizer.decode", "float ids", lambda: tok.decode([0.7, 1.2]), "ids"),
        error("tokenizers", "ByteBPETokenizer.train", "vocab_size=100", lambda: ByteBPETokenizer.train("abab", 100),
              "vocab_size"),
        error("tokenizers", "ByteBPETokenizer.train", "vocab_size=True", lambda: ByteBPETokenizer.train("abab", True),
              "vocab_size"),
        error("tokenizers", "ByteBPETokenizer.decode", "negative id", lambda: ByteBPETokenizer([]).decode([-1]), "ids"),
        error("tokenizers", "ByteBPETokenizer.decode", "float ids", lambda: ByteBPETokenizer([]).decode([65.9]), "ids"),
        error("tokenizers", "tokenizer_from_dict", "unknown type", lambda: tokenizer_from_dict({"type": "wordpiece"}),
              "type"),
    ]
    return rows


# --------------------------------------------------------------------------- diffusion


def diffusion_probes() -> list[Probe]:
    rows = [
        error("diffusion", "beta_schedule", f"linear, timesteps={t} (betas leave (0, 1))",
              lambda t=t: diff.beta_schedule("linear", t), "timesteps") for t in (2, 10, 20)
    ]
    rows += [
        error("diffusion", "beta_schedule", f"timesteps={t!r}", lambda t=t: diff.beta_schedule("cosine", t), "timesteps")
        for t in (0, -3, 2.0, True, "100", None)
    ]
    rows += [
        error("diffusion", "beta_schedule", "unknown name", lambda: diff.beta_schedule("quadratic", 100), "name"),
        error("diffusion", "beta_schedule", "name is not a str", lambda: diff.beta_schedule(1, 100), "name"),
        documented("diffusion", "beta_schedule", "linear with T = 1 is one small beta",
                   lambda: diff.beta_schedule("linear", 1), lambda b: b.shape == (1,) and 0 < float(b) < 1),
        documented("diffusion", "beta_schedule", "linear with T = 21 is the shortest valid one",
                   lambda: diff.beta_schedule("linear", 21), lambda b: bool(((b > 0) & (b < 1)).all())),
        error("diffusion", "NoiseSchedule", "linear, timesteps=10", lambda: diff.NoiseSchedule("linear", 10), "timesteps"),
        error("diffusion", "NoiseSchedule", "integer dtype", lambda: diff.NoiseSchedule("linear", 100, torch.int64), "dtype"),
        error("diffusion", "NoiseSchedule", "alpha-bar underflows in float16",
              lambda: diff.NoiseSchedule("cosine", 1000, torch.float16), "timesteps"),
        error("diffusion", "NoiseSchedule.q_sample", "t out of range", lambda: sched.q_sample(eps2, 100, eps2), "t"),
        error("diffusion", "NoiseSchedule.q_sample", "float t", lambda: sched.q_sample(eps2, torch.tensor([1.5, 2.0]), eps2), "t"),
        error("diffusion", "NoiseSchedule.q_sample", "noise of another shape", lambda: sched.q_sample(eps2, 3, torch.zeros(3)),
              "noise"),
        error("diffusion", "NoiseSchedule.q_sample", "x0 is a list", lambda: sched.q_sample([[0.0, 0.0]], 3, eps2), "x0"),
        error("diffusion", "NoiseSchedule.q_sample", "one t per item, wrong count",
              lambda: sched.q_sample(eps2, torch.tensor([1, 2, 3]), eps2), "t"),
        error("diffusion", "NoiseSchedule.q_step", "noise of another shape", lambda: sched.q_step(eps2, 3, torch.zeros(3)),
              "noise"),
        error("diffusion", "NoiseSchedule.posterior", "prev_t >= t", lambda: sched.posterior(eps2, eps2, 5, 5), "prev_t"),
        error("diffusion", "NoiseSchedule.posterior", "xt of another shape", lambda: sched.posterior(eps2, torch.zeros(3), 5),
              "xt"),
        error("diffusion", "NoiseSchedule.predict_x0", "eps of another shape",
              lambda: sched.predict_x0(eps2, 5, torch.zeros(3)), "eps"),
        error("diffusion", "NoiseSchedule.alpha_bar", "float t", lambda: sched.alpha_bar(2.5), "t"),
        error("diffusion", "NoiseSchedule.alpha_bar", "t below -1", lambda: sched.alpha_bar(-2), "t"),
        error("diffusion", "inference_timesteps", "0 steps", lambda: diff.inference_timesteps(100, 0), "num_inference_steps"),
        error("diffusion", "inference_timesteps", "more steps than T",
              lambda: diff.inference_timesteps(100, 101), "num_inference_steps"),
        error("diffusion", "inference_timesteps", "2.0 steps", lambda: diff.inference_timesteps(100, 2.0), "num_inference_steps"),
        error("diffusion", "inference_timesteps", "T = 0", lambda: diff.inference_timesteps(0, 1), "num_train_timesteps"),
        documented("diffusion", "inference_timesteps", "n = T is every step", lambda: diff.inference_timesteps(5, 5),
                   lambda t: t.tolist() == [4, 3, 2, 1, 0]),
        error("diffusion", "ddpm_step", "no noise before the last step", lambda: diff.ddpm_step(sched, eps2, 50, eps2, 49),
              "noise"),
        error("diffusion", "ddpm_step", "eps of another shape", lambda: diff.ddpm_step(sched, torch.zeros(3), 50, eps2, -1),
              "eps"),
        error("diffusion", "ddpm_step", "t out of range", lambda: diff.ddpm_step(sched, eps2, 100, eps2, -1), "t"),
        error("diffusion", "ddpm_step", "clip_sample=nan", lambda: diff.ddpm_step(sched, eps2, 5, eps2, -1, clip_sample=NAN),
              "clip_sample"),
        error("diffusion", "ddpm_step", "clip_sample=0", lambda: diff.ddpm_step(sched, eps2, 5, eps2, -1, clip_sample=0.0),
              "clip_sample"),
        documented("diffusion", "ddpm_step", "NaN x propagates (a step does not scan values)",
                   lambda: diff.ddpm_step(sched, eps2, 5, torch.full((2, 2), NAN), -1), lambda t: bool(torch.isnan(t).all())),
        error("diffusion", "ddim_step", "eta=-1", lambda: diff.ddim_step(sched, eps2, 50, eps2, 40, -1.0), "eta"),
        error("diffusion", "ddim_step", "eta=nan", lambda: diff.ddim_step(sched, eps2, 50, eps2, 40, NAN), "eta"),
        error("diffusion", "ddim_step", "eta=inf", lambda: diff.ddim_step(sched, eps2, 50, eps2, 40, INF), "eta"),
        error("diffusion", "ddim_step", "eta > 0 without noise", lambda: diff.ddim_step(sched, eps2, 50, eps2, 40, 0.5), "noise"),
        error("diffusion", "ddim_step", "prev_t = t", lambda: diff.ddim_step(sched, eps2, 50, eps2, 50), "prev_t"),
        error("diffusion", "ddim_step", "prev_t=2.5", lambda: diff.ddim_step(sched, eps2, 50, eps2, 2.5), "prev_t"),
        error("diffusion", "ddim_step", "integer x", lambda: diff.ddim_step(sched, eps2, 50, eps2.long(), 40), "x"),
    ]
    for bad in (INF, NAN, -1.0, True, "2"):
        rows.append(error("diffusion", "classifier_free_guidance", f"guidance_scale={bad!r}",
                          lambda bad=bad: diff.classifier_free_guidance(eps2, eps2, bad), "guidance_scale"))
    rows += [
        error("diffusion", "classifier_free_guidance", "predictions of different shapes",
              lambda: diff.classifier_free_guidance(eps2, torch.zeros(2, 3), 2.0), "eps_cond"),
        documented("diffusion", "classifier_free_guidance", "scale 0 is the unconditional prediction",
                   lambda: diff.classifier_free_guidance(torch.ones(2), torch.zeros(2), 0.0), lambda t: t.tolist() == [1, 1]),
        error("diffusion", "predict_noise", "guidance_scale=inf",
              lambda: diff.predict_noise(tiny_denoiser(), eps2, 5, guidance_scale=INF), "guidance_scale"),
        error("diffusion", "predict_noise", "guidance without a null label",
              lambda: diff.predict_noise(tiny_denoiser(), eps2, 5, torch.tensor([1, 2]), None, 2.0), "null_label"),
    ]
    model = tiny_denoiser
    for option, bad in (("guidance_scale", INF), ("guidance_scale", NAN), ("guidance_scale", -1.0), ("eta", NAN),
                        ("eta", -0.5), ("eta", True), ("num_inference_steps", 0), ("num_inference_steps", 101),
                        ("num_inference_steps", 2.0), ("sampler", "euler"), ("clip_sample", INF),
                        ("clip_sample", -1.0)):
        rows.append(error("diffusion", "sample", f"{option}={bad!r}",
                          lambda option=option, bad=bad: diff.sample(model(), sched, (2, 2), **{option: bad}), option))
    rows += [
        error("diffusion", "sample", "shape with a zero", lambda: diff.sample(model(), sched, (0, 2)), "shape"),
        error("diffusion", "sample", "shape is an int", lambda: diff.sample(model(), sched, 2), "shape"),
        error("diffusion", "sample", "float labels (would truncate)",
              lambda: diff.sample(model(), sched, (2, 2), labels=[1.7, 2.2]), "labels"),
        error("diffusion", "sample", "labels of the wrong length",
              lambda: diff.sample(model(), sched, (2, 2), labels=[1, 2, 3]), "labels"),
        error("diffusion", "noise_prediction_loss", "p_uncond=1.5",
              lambda: diff.noise_prediction_loss(model(), sched, eps2, p_uncond=1.5), "p_uncond"),
        error("diffusion", "MLPDenoiser.forward", "x of the wrong width",
              lambda: model()(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long)), "x"),
        error("diffusion", "MLPDenoiser.forward", "t of the wrong length",
              lambda: model()(eps2, torch.zeros(3, dtype=torch.long)), "t"),
        error("diffusion", "timestep_embedding", "odd dim", lambda: diff.timestep_embedding(torch.zeros(2), 3), "dim"),
    ]
    return rows


def diffusion_pipeline_probes() -> list[Probe]:
    def ddpm(**kw):
        return lambda: load("digits-ddpm")(**{"num_inference_steps": 1, **kw})

    def grid(n=2, **kw):
        return lambda: load("grid-ddpm").sample(n, **{"num_inference_steps": 1, **kw})

    rows = []
    for option, bad in (("guidance_scale", INF), ("guidance_scale", NAN), ("guidance_scale", -1.0),
                        ("guidance_scale", True), ("guidance_scale", "2"), ("eta", INF), ("eta", -0.1),
                        ("num_inference_steps", 0), ("num_inference_steps", 1001), ("num_inference_steps", 2.5),
                        ("num_inference_steps", True), ("sampler", "euler"), ("sampler", None), ("num_images", 0),
                        ("num_images", True), ("num_images", 2.5), ("clip_sample", "yes"), ("seed", -1), ("seed", True),
                        ("seed", 1.5)):
        rows.append(error("pipelines", "digits-ddpm", f"{option}={bad!r}", ddpm(**{option: bad}), option))
    for case, labels in (("label 10", [10]), ("negative label", [-1]), ("float labels", [1.5]), ("bool labels", [True]),
                         ("empty labels", []), ("2-D labels", [[1, 2]]), ("string labels", ["three"])):
        rows.append(error("pipelines", "digits-ddpm", case, ddpm(labels=labels), "labels"))
    rows += [
        error("pipelines", "digits-ddpm", "num_images with labels", ddpm(labels=[1], num_images=3), "num_images"),
        documented("pipelines", "digits-ddpm", "guidance_scale=0 is the unconditional model",
                   ddpm(labels=[3], guidance_scale=0.0, seed=0), lambda t: t.shape == (1, 1, 8, 8) and in_unit_range(t)),
        documented("pipelines", "digits-ddpm", "one DDIM step gives images in [0, 1]",
                   ddpm(labels=[3, 4], sampler="ddim", seed=0), lambda t: t.shape == (2, 1, 8, 8) and in_unit_range(t)),
    ]
    for case, n in (("n=0", 0), ("n=True", True), ("n=2.5", 2.5)):
        rows.append(error("pipelines", "grid-ddpm", case, grid(n), "n"))
    for option, bad in (("eta", NAN), ("sampler", "euler"), ("num_inference_steps", 0), ("seed", -2),
                        ("return_trajectory", "no")):
        rows.append(error("pipelines", "grid-ddpm", f"{option}={bad!r}", grid(**{option: bad}), option))
    rows.append(documented("pipelines", "grid-ddpm", "one step gives finite points", grid(seed=0),
                           lambda t: t.shape == (2, 2) and finite(t)))
    return rows


# --------------------------------------------------------------------------- VAE


def vae_probes() -> list[Probe]:
    m, v = tiny_vae, lambda: load("digits-vae")
    mu = torch.zeros(2, 3)
    rows = [
        error("vae", "reparameterize", "logvar of another shape", lambda: vae.reparameterize(mu, torch.zeros(2, 4)), "logvar"),
        error("vae", "reparameterize", "eps of another shape", lambda: vae.reparameterize(mu, mu, eps=torch.zeros(3)), "eps"),
        error("vae", "reparameterize", "mu is a list", lambda: vae.reparameterize([0.0], mu), "mu"),
        error("vae", "gaussian_kl", "logvar of another shape", lambda: vae.gaussian_kl(mu, torch.zeros(3)), "logvar"),
        error("vae", "gaussian_kl", "mu_p of another shape", lambda: vae.gaussian_kl(mu, mu, torch.zeros(5)), "mu_p"),
        error("vae", "iw_bound", "K = 0", lambda: vae.iw_bound(torch.zeros(0, 3)), "log_weights"),
        error("vae", "iw_bound", "integer weights", lambda: vae.iw_bound(torch.zeros(2, 3, dtype=torch.long)), "log_weights"),
        error("vae", "binomial_log_prob", "n=0", lambda: vae.binomial_log_prob(mu, mu, 0), "n"),
        error("vae", "VAE", "unknown data", lambda: vae.VAE("images"), "data"),
        error("vae", "VAE", "latent_dim=True", lambda: vae.VAE("digits", latent_dim=True), "latent_dim"),
        error("vae", "VAE", "hidden=0", lambda: vae.VAE("digits", hidden=0), "hidden"),
        error("vae", "make_vae", "wrong likelihood", lambda: vae.make_vae("2d", likelihood="binomial"), "likelihood"),
        error("vae", "VAE.encode", "x flattened", lambda: m().encode(torch.zeros(2, 64)), "x"),
        error("vae", "VAE.encode", "NaN x", lambda: m().encode(nan_digit), "x"),
        error("vae", "VAE.encode", "x off the 17-level grid", lambda: m().encode(torch.full((2, 1, 8, 8), 0.3)), "x"),
        error("vae", "VAE.encode", "x in [0, 16]", lambda: m().encode(torch.full((2, 1, 8, 8), 16.0)), "x"),
        error("vae", "VAE.encode", "integer x", lambda: m().encode(torch.zeros(2, 1, 8, 8, dtype=torch.long)), "x"),
        error("vae", "VAE.decode", "NaN z", lambda: m().decode(torch.full((2, 2), NAN)), "z"),
        error("vae", "VAE.decode", "inf z", lambda: m().decode(torch.tensor([[INF, 0.0]])), "z"),
        error("vae", "VAE.decode", "z of the wrong width", lambda: m().decode(torch.zeros(2, 5)), "z"),
        error("vae", "VAE.decode", "z of rank 1", lambda: m().decode(torch.zeros(2)), "z"),
        error("vae", "VAE.decode", "integer z", lambda: m().decode(torch.zeros(2, 2, dtype=torch.long)), "z"),
        error("vae", "VAE.decode", "z is a list", lambda: m().decode([[0.0, 0.0]]), "z"),
        documented("vae", "VAE.decode", "(K, B, D) codes decode to (K, B, 1, 8, 8)", lambda: m().decode(torch.zeros(3, 2, 2)),
                   lambda t: t.shape == (3, 2, 1, 8, 8) and in_unit_range(t)),
        error("vae", "VAE.log_likelihood", "NaN z", lambda: m().log_likelihood(digit, torch.full((2, 2), NAN)), "z"),
        error("vae", "VAE.elbo", "beta=inf", lambda: m().elbo(digit, beta=INF), "beta"),
        error("vae", "VAE.elbo", "beta=True", lambda: m().elbo(digit, beta=True), "beta"),
        error("vae", "VAE.elbo", "beta=-1", lambda: m().elbo(digit, beta=-1.0), "beta"),
        error("vae", "VAE.elbo", "num_samples=0", lambda: m().elbo(digit, num_samples=0), "num_samples"),
        error("vae", "VAE.importance_weighted_log_likelihood", "chunk_size=0",
              lambda: m().importance_weighted_log_likelihood(digit, 4, chunk_size=0), "chunk_size"),
        error("vae", "VAE.sample", "n=0", lambda: m().sample(0), "n"),
        error("vae", "VAE.sample", "n=True", lambda: m().sample(True), "n"),
        error("vae", "VAE.sample", "mean='yes'", lambda: m().sample(2, mean="yes"), "mean"),
        error("vae", "VAE.sample", "seed=-1", lambda: m().sample(2, seed=-1), "seed"),
        error("vae", "vae_loss_fn", "batch_size=0", lambda: vae.vae_loss_fn(digit, batch_size=0), "batch_size"),
        error("vae", "vae_loss_fn", "beta=nan", lambda: vae.vae_loss_fn(digit, beta=NAN), "beta"),
        error("vae", "vae_loss_fn", "NaN x_train (first step)", lambda: vae.vae_loss_fn(nan_digit)(m(), 0), "x_train"),
        error("vae", "evaluate_bounds", "ks with 0", lambda: vae.evaluate_bounds(m(), digit, ks=(0,)), "ks"),
        error("vae", "bits_per_dim", "nats=nan", lambda: vae.bits_per_dim(NAN), "nats"),
        error("vae", "bits_per_dim", "dims=0", lambda: vae.bits_per_dim(-1.0, 0), "dims"),
        error("pipelines", "digits-vae", "decode NaN z", lambda: v().decode(torch.full((1, 16), NAN)), "z"),
        error("pipelines", "digits-vae", "encode (2, 64) x", lambda: v().encode(torch.zeros(2, 64)), "x"),
        error("pipelines", "digits-vae", "sample n=-1", lambda: v().sample(-1), "n"),
        error("pipelines", "digits-vae", "sample seed=True", lambda: v().sample(2, seed=True), "seed"),
        error("pipelines", "digits-vae-2d", "decode z of width 16",
              lambda: load("digits-vae-2d").decode(torch.zeros(1, 16)), "z"),
        documented("pipelines", "digits-vae", "sample(2, seed=0) is in [0, 1]", lambda: v().sample(2, seed=0), in_unit_range),
    ]
    return rows


# --------------------------------------------------------------------------- GAN


def gan_probes() -> list[Probe]:
    cgan, ring = (lambda: load("digits-cgan")), (lambda: load("ring-gan"))
    G = gan.Generator(latent_dim=2, hidden=4, depth=1)
    D = gan.Discriminator(hidden=4, depth=1)
    cond_G = gan.Generator(latent_dim=2, hidden=4, depth=1, num_classes=3)
    img_G = gan.ImageGenerator(latent_dim=2, hidden=4, depth=1, embed_dim=2)
    density = torch.tensor([0.5, 0.5])
    rows = [
        error("gan", "Generator", "latent_dim=0", lambda: gan.Generator(latent_dim=0), "latent_dim"),
        error("gan", "Generator", "hidden=2.5", lambda: gan.Generator(hidden=2.5), "hidden"),
        error("gan", "Generator", "data_scale=nan", lambda: gan.Generator(data_scale=NAN), "data_scale"),
        error("gan", "Generator", "data_scale=inf", lambda: gan.Generator(data_scale=INF), "data_scale"),
        error("gan", "Discriminator", "pack=0", lambda: gan.Discriminator(pack=0), "pack"),
        error("gan", "Discriminator", "fourier_scale=inf", lambda: gan.Discriminator(fourier_scale=INF), "fourier_scale"),
        error("gan", "Discriminator", "conditional with pack=2", lambda: gan.Discriminator(num_classes=3, pack=2), "pack"),
        error("gan", "Generator.forward", "z of the wrong width", lambda: G(torch.zeros(3, 5)), "z"),
        error("gan", "Generator.forward", "integer z", lambda: G(torch.zeros(3, 2, dtype=torch.long)), "z"),
        error("gan", "Generator.forward", "labels to an unconditional G", lambda: G(torch.zeros(3, 2), torch.zeros(3)), "labels"),
        error("gan", "Generator.forward", "label out of range",
              lambda: cond_G(torch.zeros(2, 2), torch.tensor([0, 3])), "labels"),
        error("gan", "Generator.forward", "float labels", lambda: cond_G(torch.zeros(2, 2), torch.tensor([0.0, 1.0])), "labels"),
        error("gan", "Generator.forward", "labels as a list", lambda: cond_G(torch.zeros(2, 2), [0, 1]), "labels"),
        error("gan", "Discriminator.forward", "x of rank 3", lambda: D(torch.zeros(2, 1, 2)), "x"),
        error("gan", "Discriminator.forward", "batch not a multiple of pack",
              lambda: gan.Discriminator(hidden=4, depth=1, pack=2)(torch.zeros(3, 2)), "pack"),
        error("gan", "ImageGenerator.decode", "NaN z", lambda: img_G.decode(torch.full((1, 2), NAN), torch.zeros(1, 2)), "z"),
        error("gan", "ImageGenerator.decode", "inf label_embedding",
              lambda: img_G.decode(torch.zeros(1, 2), torch.full((1, 2), INF)), "label_embedding"),
        error("gan", "ImageGenerator.decode", "label_embedding of the wrong width",
              lambda: img_G.decode(torch.zeros(1, 2), torch.zeros(1, 3)), "label_embedding"),
        error("gan", "ImageDiscriminator.forward", "x flattened",
              lambda: gan.ImageDiscriminator(hidden=4, depth=1)(torch.zeros(2, 64), torch.zeros(2, dtype=torch.long)), "x"),
        error("gan", "discriminator_loss", "unknown kind",
              lambda: gan.discriminator_loss(density, density, "lsgan"), "kind"),
        error("gan", "discriminator_loss", "(B, 1) logits", lambda: gan.discriminator_loss(density[:, None], density, "wgan"),
              "real_logits"),
        error("gan", "discriminator_loss", "empty fake logits", lambda: gan.discriminator_loss(density, density[:0], "hinge"),
              "fake_logits"),
        error("gan", "generator_loss", "integer logits", lambda: gan.generator_loss(torch.tensor([1, 2]), "wgan"),
              "fake_logits"),
        error("gan", "gradient_penalty", "fake of another shape", lambda: gan.gradient_penalty(D, points, points[:2]), "fake"),
        error("gan", "r1_penalty", "real is a list", lambda: gan.r1_penalty(D, [[0.0, 0.0]]), "real"),
        error("gan", "gaussian_pdf", "std=0", lambda: gan.gaussian_pdf(density, 0.0, 0.0), "std"),
        error("gan", "gaussian_pdf", "std=inf", lambda: gan.gaussian_pdf(density, 0.0, INF), "std"),
        error("gan", "gaussian_pdf", "mean=nan", lambda: gan.gaussian_pdf(density, NAN, 1.0), "mean"),
        error("gan", "optimal_discriminator", "negative density", lambda: gan.optimal_discriminator(-density, density), "p_data"),
        error("gan", "optimal_discriminator", "NaN density",
              lambda: gan.optimal_discriminator(density, torch.tensor([NAN, 0.5])), "p_g"),
        error("gan", "optimal_discriminator", "shapes differ", lambda: gan.optimal_discriminator(density, density[:1]), "p_g"),
        documented("gan", "optimal_discriminator", "1/2 where both densities are 0",
                   lambda: gan.optimal_discriminator(torch.zeros(2), torch.zeros(2)), lambda t: t.tolist() == [0.5, 0.5]),
        error("gan", "value_function", "d outside [0, 1]",
              lambda: gan.value_function(torch.tensor([1.5, 0.5]), density, density, 0.1), "d"),
        error("gan", "value_function", "dx=0", lambda: gan.value_function(density, density, density, 0.0), "dx"),
        error("gan", "kl_divergence", "dx=nan", lambda: gan.kl_divergence(density, density, NAN), "dx"),
        error("gan", "js_divergence", "negative q", lambda: gan.js_divergence(density, -density, 0.1), "q"),
        error("gan", "rejection_sample", "n=0", lambda: gan.rejection_sample(G, D, 0, burn_in=4), "n"),
        error("gan", "rejection_sample", "quantile=nan", lambda: gan.rejection_sample(G, D, 2, quantile=NAN), "quantile"),
        error("gan", "rejection_sample", "quantile=0", lambda: gan.rejection_sample(G, D, 2, quantile=0.0), "quantile"),
        error("gan", "rejection_sample", "max_rounds=0", lambda: gan.rejection_sample(G, D, 2, max_rounds=0), "max_rounds"),
        error("gan", "fit_rejection_critic", "steps=0",
              lambda: gan.fit_rejection_critic(G, data.ring_gaussians, steps=0, progress=False), "steps"),
        error("gan", "fit_rejection_critic", "lr=nan",
              lambda: gan.fit_rejection_critic(G, data.ring_gaussians, lr=NAN, progress=False), "lr"),
    ]
    for field, bad in (("loss", "lsgan"), ("steps", -1), ("steps", 2.5), ("batch_size", 0), ("d_steps", True),
                       ("lr_g", NAN), ("lr_d", INF), ("lr_g", 0.0), ("gp_weight", -1.0), ("r1_weight", NAN),
                       ("ema_decay", 1.0), ("betas", (0.5, 1.5)), ("betas", (0.5,)), ("lr_decay", "yes")):
        rows.append(error("gan", "GANConfig", f"{field}={bad!r}", lambda field=field, bad=bad: gan.GANConfig(**{field: bad}),
                          field))
    from aigc_course.gan.recipes import evaluate_toy, train_toy_gan

    rows += [
        error("gan", "train_toy_gan", "unknown dataset", lambda: train_toy_gan("spiral", progress=False), "dataset"),
        error("gan", "train_toy_gan", "unknown recipe", lambda: train_toy_gan("ring", "magic", progress=False), "recipe"),
        error("gan", "train_toy_gan", "seed=-1", lambda: train_toy_gan("ring", seed=-1, progress=False), "seed"),
        error("gan", "evaluate_toy", "unknown dataset", lambda: evaluate_toy(ring(), "spiral"), "dataset"),
    ]
    # the shipped GAN pipelines
    rows += [
        error("pipelines", "digits-cgan", f"labels: {case}", lambda labels=labels: cgan()(labels), "labels")
        for case, labels in (("10", [10]), ("-1", [-1]), ("floats", [1.5]), ("bools", [True]), ("empty", []),
                             ("2-D", [[1]]), ("strings", ["one"]))
    ]
    rows += [
        error("pipelines", "digits-cgan", "seed=-1", lambda: cgan()([1], seed=-1), "seed"),
        error("pipelines", "digits-cgan", "seed=True", lambda: cgan()([1], seed=True), "seed"),
        error("pipelines", "digits-cgan", "generate: NaN z", lambda: cgan().generate([1], torch.full((1, 32), NAN)), "z"),
        error("pipelines", "digits-cgan", "generate: inf z", lambda: cgan().generate([1], torch.full((1, 32), INF)), "z"),
        error("pipelines", "digits-cgan", "generate: z of the wrong width", lambda: cgan().generate([1], torch.zeros(1, 5)), "z"),
        error("pipelines", "digits-cgan", "generate: one z for two labels",
              lambda: cgan().generate([1, 2], torch.zeros(1, 32)), "z"),
        error("pipelines", "digits-cgan", "generate: z is a list", lambda: cgan().generate([1], [[0.0] * 32]), "z"),
        documented("pipelines", "digits-cgan", "one image per label, in [0, 1]", lambda: cgan()([0, 9], seed=0),
                   lambda t: t.shape == (2, 1, 8, 8) and in_unit_range(t)),
    ]
    for name in ("ring-gan", "grid-gan"):
        rows += [
            error("pipelines", name, f"sample n={bad!r}", lambda name=name, bad=bad: load(name).sample(bad), "n")
            for bad in (0, True, 2.5, "4")
        ]
        rows += [
            error("pipelines", name, "sample seed=-1", lambda name=name: load(name).sample(2, seed=-1), "seed"),
            error("pipelines", name, "sample rejection='yes'",
                  lambda name=name: load(name).sample(2, rejection="yes"), "rejection"),
            documented("pipelines", name, "sample(3, rejection=False) is (3, 2) and finite",
                       lambda name=name: load(name).sample(3, seed=0, rejection=False), lambda t: t.shape == (3, 2) and finite(t)),
        ]
    return rows


# --------------------------------------------------------------------------- metrics


def metrics_probes() -> list[Probe]:
    rows = [
        error("metrics", "classifier_accuracy", "images of rank 3",
              lambda: metrics.classifier_accuracy(torch.zeros(2, 8, 8), torch.zeros(2, dtype=torch.long)), "images"),
        error("metrics", "classifier_accuracy", "NaN images",
              lambda: metrics.classifier_accuracy(nan_digit, torch.zeros(2, dtype=torch.long)), "images"),
        error("metrics", "classifier_accuracy", "images in [0, 16]",
              lambda: metrics.classifier_accuracy(digit + 16, torch.zeros(2, dtype=torch.long)), "images"),
        error("metrics", "classifier_accuracy", "images in [-1, 1]",
              lambda: metrics.classifier_accuracy(digit - 1, torch.zeros(2, dtype=torch.long)), "images"),
        error("metrics", "classifier_accuracy", "uint8 images",
              lambda: metrics.classifier_accuracy(digit.to(torch.uint8), torch.zeros(2, dtype=torch.long)), "images"),
        error("metrics", "classifier_accuracy", "no images",
              lambda: metrics.classifier_accuracy(digit[:0], torch.zeros(0, dtype=torch.long)), "images"),
        error("metrics", "classifier_accuracy", "labels of another length",
              lambda: metrics.classifier_accuracy(digit, torch.zeros(3, dtype=torch.long)), "labels"),
        error("metrics", "classifier_accuracy", "float labels",
              lambda: metrics.classifier_accuracy(digit, torch.tensor([1.5, 2.0])), "labels"),
        error("metrics", "frechet_digit_distance", "images_b flattened",
              lambda: metrics.frechet_digit_distance(digit, torch.zeros(2, 64)), "images_b"),
        error("metrics", "frechet_digit_distance", "NaN images_a",
              lambda: metrics.frechet_digit_distance(nan_digit, digit), "images_a"),
        error("metrics", "frechet_distance", "one sample", lambda: metrics.frechet_distance(np.zeros((1, 2)), np.zeros((5, 2))),
              "features_a"),
        error("metrics", "frechet_distance", "widths differ",
              lambda: metrics.frechet_distance(np.zeros((5, 2)), np.zeros((5, 3))), "features_b"),
        error("metrics", "frechet_distance", "NaN features",
              lambda: metrics.frechet_distance(np.zeros((5, 2)), np.full((5, 2), NAN)), "features_b"),
        documented("metrics", "frechet_distance", "identical sets are at distance ~0",
                   lambda: metrics.frechet_distance(np.eye(4), np.eye(4)), lambda d: abs(d) < 1e-6),
        error("metrics", "nearest_neighbour_distances", "per-item shapes differ",
              lambda: metrics.nearest_neighbour_distances(torch.zeros(2, 4), torch.zeros(2, 5)), "reference"),
        error("metrics", "nearest_neighbour_distances", "empty reference",
              lambda: metrics.nearest_neighbour_distances(torch.zeros(2, 4), torch.zeros(0, 4)), "reference"),
        error("metrics", "nearest_neighbour_distances", "NaN samples",
              lambda: metrics.nearest_neighbour_distances(torch.full((2, 4), NAN), torch.zeros(2, 4)), "samples"),
        error("metrics", "DigitClassifier.forward", "images of rank 2",
              lambda: metrics.DigitClassifier(width=2)(torch.zeros(2, 64)), "images"),
        error("metrics", "mode_coverage", "std=0", lambda: metrics.mode_coverage(points, data.ring_centers(), 0.0), "std"),
        error("metrics", "mode_coverage", "std=inf", lambda: metrics.mode_coverage(points, data.ring_centers(), INF), "std"),
        error("metrics", "mode_coverage", "threshold=nan",
              lambda: metrics.mode_coverage(points, data.ring_centers(), 0.1, NAN), "threshold"),
        error("metrics", "mode_coverage", "samples (N, 3)",
              lambda: metrics.mode_coverage(torch.zeros(4, 3), data.ring_centers(), 0.1), "samples"),
        error("metrics", "mode_coverage", "NaN samples",
              lambda: metrics.mode_coverage(torch.full((4, 2), NAN), data.ring_centers(), 0.1), "samples"),
        error("metrics", "mode_coverage", "no samples",
              lambda: metrics.mode_coverage(torch.zeros(0, 2), data.ring_centers(), 0.1), "samples"),
        error("metrics", "mode_coverage", "centers (K,)", lambda: metrics.mode_coverage(points, torch.zeros(4), 0.1), "centers"),
        error("metrics", "ring_coverage", "samples as a string", lambda: metrics.ring_coverage("points"), "samples"),
        documented("metrics", "ring_coverage", "samples far from every mode: 0 captured, reverse KL inf",
                   lambda: metrics.ring_coverage(torch.full((4, 2), 50.0)),
                   lambda c: c.modes_captured == 0 and math.isinf(c.reverse_kl)),
    ]
    from aigc_course.metrics.modes import reverse_kl_to_uniform

    rows += [
        error("metrics", "reverse_kl_to_uniform", "negative counts", lambda: reverse_kl_to_uniform([1, -1]), "counts"),
        error("metrics", "reverse_kl_to_uniform", "NaN counts", lambda: reverse_kl_to_uniform([1.0, NAN]), "counts"),
        documented("metrics", "reverse_kl_to_uniform", "an all-zero histogram is inf",
                   lambda: reverse_kl_to_uniform([0, 0]), math.isinf),
    ]
    return rows


# --------------------------------------------------------------------------- data


def data_probes() -> list[Probe]:
    rows = []
    for fn in (data.ring_gaussians, data.grid_gaussians):
        name = fn.__name__
        rows += [error("data", name, f"n={bad!r}", lambda fn=fn, bad=bad: fn(bad), "n") for bad in (0, -1, True, 2.5)]
        rows += [error("data", name, f"std={bad!r}", lambda fn=fn, bad=bad: fn(4, std=bad), "std") for bad in (-0.1, NAN, INF)]
        rows.append(error("data", name, "generator is an int", lambda fn=fn: fn(4, generator=0), "generator"))
    rows += [
        error("data", "ring_centers", "num_modes=0", lambda: data.ring_centers(0), "num_modes"),
        error("data", "ring_centers", "radius=nan", lambda: data.ring_centers(8, NAN), "radius"),
        error("data", "grid_centers", "no values", lambda: data.grid_centers(()), "values"),
        error("data", "grid_centers", "inf value", lambda: data.grid_centers((0.0, INF)), "values"),
        error("data", "ring_log_density", "x (n, 3)", lambda: data.ring_log_density(torch.zeros(4, 3)), "x"),
        error("data", "ring_log_density", "integer x", lambda: data.ring_log_density(torch.zeros(4, 2, dtype=torch.long)), "x"),
        error("data", "ring_log_density", "std=0", lambda: data.ring_log_density(points, std=0.0), "std"),
        error("data", "load_digits", "test_size=0", lambda: data.load_digits(test_size=0.0), "test_size"),
        error("data", "load_digits", "test_size=nan", lambda: data.load_digits(test_size=NAN), "test_size"),
        error("data", "load_digits", "seed=-1", lambda: data.load_digits(seed=-1), "seed"),
        error("data", "python_corpus", "max_chars=0", lambda: data.python_corpus(max_chars=0), "max_chars"),
        error("data", "python_corpus", "max_chars=1.5", lambda: data.python_corpus(max_chars=1.5), "max_chars"),
        error("data", "python_corpus", "test_fraction=0", lambda: data.python_corpus(test_fraction=0.0), "test_fraction"),
        error("data", "python_corpus", "fractions sum to 1",
              lambda: data.python_corpus(valid_fraction=0.5, test_fraction=0.5), "valid_fraction"),
        error("data", "python_corpus", "missing root", lambda: data.python_corpus(root="/no/such/folder"), "root"),
        error("data", "read_text_file", "missing file", lambda: data.read_text_file("/no/such/file.txt"), "corpus file"),
        error("data", "encode_chars", "a character outside the alphabet", lambda: data.encode_chars("naïve"), "text"),
        error("data", "encode_chars", "text is a list", lambda: data.encode_chars(["a"]), "text"),
        error("data", "decode_chars", "id 96", lambda: data.decode_chars([96]), "ids"),
        error("data", "decode_chars", "float ids", lambda: data.decode_chars(torch.tensor([1.7])), "ids"),
        error("data", "normalize_text", "text is bytes", lambda: data.normalize_text(b"abc"), "text"),
        error("data", "TextCorpus.split", "unknown split",
              lambda: data.TextCorpus("a", "b", "c", {}, "x").split("dev"), "split"),
    ]
    if hasattr(data, "captioned_scenes"):  # arrives with the text-to-image package
        rows += [
            error("data", "captioned_scenes", "n=0", lambda: data.captioned_scenes(0), "n"),
            error("data", "captioned_scenes", "unknown split", lambda: data.captioned_scenes(2, split="test"), "split"),
        ]
    return rows


# --------------------------------------------------------------------------- multimodal


def multimodal_probes() -> list[Probe]:
    clip = tiny_clip
    emb = torch.zeros(2, 4)
    labels = torch.arange(10).repeat(2)
    images = torch.zeros(20, 1, 8, 8)
    return [
        error("multimodal", "caption", "label=10", lambda: multimodal.caption("a {name}", 10), "label"),
        error("multimodal", "caption", "label=True", lambda: multimodal.caption("a {name}", True), "label"),
        error("multimodal", "caption", "template is None", lambda: multimodal.caption(None, 3), "template"),
        error("multimodal", "words", "text is an int", lambda: multimodal.words(3), "text"),
        error("multimodal", "Vocabulary", "no tokens", lambda: multimodal.Vocabulary([]), "tokens"),
        error("multimodal", "Vocabulary.encode", "a str, not a list", lambda: clip().vocab.encode("a seven"), "texts"),
        error("multimodal", "Vocabulary.encode", "an unknown word", lambda: clip().vocab.encode(["a zebra"]), "texts"),
        error("multimodal", "Vocabulary.encode", "an empty text", lambda: clip().vocab.encode(["!!"]), "texts"),
        error("multimodal", "clip_loss", "batch sizes differ", lambda: multimodal.clip_loss(emb, torch.zeros(3, 4), 1.0),
              "text_emb"),
        error("multimodal", "clip_loss", "image_emb of rank 1", lambda: multimodal.clip_loss(torch.zeros(4), emb, 1.0),
              "image_emb"),
        error("multimodal", "clip_loss", "logit_scale=inf", lambda: multimodal.clip_loss(emb, emb, INF), "logit_scale"),
        error("multimodal", "clip_loss", "logit_scale=-1", lambda: multimodal.clip_loss(emb, emb, -1.0), "logit_scale"),
        error("multimodal", "clip_loss", "logit_scale of shape (2,)",
              lambda: multimodal.clip_loss(emb, emb, torch.ones(2)), "logit_scale"),
        error("multimodal", "TinyCLIP", "vocab is a list", lambda: multimodal.TinyCLIP(["a"]), "vocab"),
        error("multimodal", "TinyCLIP.encode_images", "images (B, 64)", lambda: clip().encode_images(torch.zeros(2, 64)),
              "images"),
        error("multimodal", "TinyCLIP.forward", "one text for two images", lambda: clip()(digit, ["a handwritten seven"]),
              "texts"),
        error("multimodal", "TinyCLIP.zero_shot_predict", "NaN images", lambda: clip().zero_shot_predict(nan_digit), "images"),
        error("multimodal", "TinyCLIP.retrieve", "k=0", lambda: clip().retrieve("a handwritten seven", digit, 0), "k"),
        error("multimodal", "TinyCLIP.retrieve", "query is a list", lambda: clip().retrieve(["a seven"], digit, 1), "query"),
        error("multimodal", "TinyCLIP.retrieve", "NaN images", lambda: clip().retrieve("a handwritten seven", nan_digit, 1),
              "images"),
        error("multimodal", "TinyCLIP.class_embeddings", "templates is a str", lambda: clip().class_embeddings("a {name}"),
              "templates"),
        error("multimodal", "zero_shot_accuracy", "labels of another length",
              lambda: multimodal.zero_shot_accuracy(clip(), digit, torch.zeros(3, dtype=torch.long)), "labels"),
        error("multimodal", "zero_shot_accuracy", "float labels",
              lambda: multimodal.zero_shot_accuracy(clip(), digit, torch.zeros(2)), "labels"),
        error("multimodal", "sample_pairs", "num_classes=11",
              lambda: multimodal.sample_pairs(images, labels, torch.Generator(), num_classes=11), "num_classes"),
        error("multimodal", "sample_pairs", "a class with no image",
              lambda: multimodal.sample_pairs(images[:5], labels[:5], torch.Generator().manual_seed(0)), "labels"),
        error("multimodal", "train_clip", "num_steps=-1", lambda: multimodal.train_clip(clip(), images, labels, -1), "num_steps"),
        error("multimodal", "train_clip", "groups=0", lambda: multimodal.train_clip(clip(), images, labels, 1, groups=0),
              "groups"),
        error("multimodal", "train_clip", "lr=nan", lambda: multimodal.train_clip(clip(), images, labels, 1, lr=NAN), "lr"),
        error("multimodal", "train_clip", "NaN images",
              lambda: multimodal.train_clip(clip(), torch.full((20, 1, 8, 8), NAN), labels, 1), "images"),
    ]


# --------------------------------------------------------------------------- scaling


def scaling_probes() -> list[Probe]:
    ids = torch.arange(100) % 7
    shape = {"vocab_size": 10, "block_size": 4, "n_layer": 2, "n_embd": 8}
    return [
        error("scaling", "parameter_count", "config is a list", lambda: scaling.parameter_count([1, 2]), "config"),
        error("scaling", "parameter_count", "a missing key", lambda: scaling.parameter_count({"vocab_size": 10}), "config"),
        error("scaling", "parameter_count", "n_embd=0", lambda: scaling.parameter_count({**shape, "n_embd": 0}), "n_embd"),
        error("scaling", "parameter_count", "n_layer=2.0", lambda: scaling.parameter_count({**shape, "n_layer": 2.0}),
              "n_layer"),
        error("scaling", "gpt_parameter_count", "vocab_size=-1", lambda: scaling.gpt_parameter_count(-1, 4, 2, 8),
              "vocab_size"),
        error("scaling", "approx_parameter_count", "n_layer=0", lambda: scaling.approx_parameter_count(0, 8), "n_layer"),
        error("scaling", "training_flops", "n_params=nan", lambda: scaling.training_flops(NAN, 10), "n_params"),
        error("scaling", "training_flops", "n_tokens=inf", lambda: scaling.training_flops(10, INF), "n_tokens"),
        error("scaling", "training_flops", "n_params=0", lambda: scaling.training_flops(0, 10), "n_params"),
        error("scaling", "fit_power_law", "lengths differ", lambda: scaling.fit_power_law([1, 2], [1]), "y"),
        error("scaling", "fit_power_law", "one point", lambda: scaling.fit_power_law([1], [1]), "x"),
        error("scaling", "fit_power_law", "negative x", lambda: scaling.fit_power_law([1, -2], [1, 2]), "x"),
        error("scaling", "fit_power_law", "NaN y", lambda: scaling.fit_power_law([1, 2], [1, NAN]), "y"),
        error("scaling", "fit_power_law", "equal x", lambda: scaling.fit_power_law([2, 2], [1, 3]), "x"),
        error("scaling", "fit_power_law", "strings", lambda: scaling.fit_power_law(["a", "b"], [1, 2]), "x"),
        error("scaling", "batches", "ids too short", lambda: scaling.batches(ids[:5], 2, 8, torch.Generator()), "ids"),
        error("scaling", "batches", "float ids", lambda: scaling.batches(ids.float(), 2, 8, torch.Generator()), "ids"),
        error("scaling", "batches", "batch_size=0", lambda: scaling.batches(ids, 0, 8, torch.Generator()), "batch_size"),
        error("scaling", "held_out_loss", "ids too short",
              lambda: scaling.held_out_loss(None, ids[:5], 8), "ids"),
        error("scaling", "run_scaling_experiment", "no widths",
              lambda: scaling.run_scaling_experiment([], ids, ids, 7, progress=False), "widths"),
        error("scaling", "run_scaling_experiment", "width not a multiple of head_dim",
              lambda: scaling.run_scaling_experiment([12], ids, ids, 7, progress=False), "widths"),
        error("scaling", "run_scaling_experiment", "train_ids of rank 2",
              lambda: scaling.run_scaling_experiment([8], ids[None], ids, 7, progress=False), "train_ids"),
        error("scaling", "run_scaling_experiment", "ids beyond vocab_size",
              lambda: scaling.run_scaling_experiment([8], ids, ids, 5, progress=False), "train_ids"),
        error("scaling", "run_scaling_experiment", "lr=nan",
              lambda: scaling.run_scaling_experiment([8], ids, ids, 7, lr=NAN, progress=False), "lr"),
        error("scaling", "run_scaling_experiment", "num_steps=0",
              lambda: scaling.run_scaling_experiment([8], ids, ids, 7, num_steps=0, progress=False), "num_steps"),
    ]


# --------------------------------------------------------------------------- set-up, loading, GPT and the other shipped pipelines


def runtime_and_text_probes() -> list[Probe]:
    gpt = lambda: load("code-gpt")  # noqa: E731
    chat = lambda: load("tiny-chat-sft")  # noqa: E731
    idx = torch.zeros(1, 2, dtype=torch.long)
    rows = [
        error("runtime", "seed_everything", "seed=-1", lambda: seed_everything(-1, deterministic=False), "seed"),
        error("runtime", "seed_everything", "seed=True", lambda: seed_everything(True, deterministic=False), "seed"),
        error("runtime", "seed_everything", "seed=1.5", lambda: seed_everything(1.5, deterministic=False), "seed"),
        error("runtime", "get_device", "AIGC_DEVICE=tpu9", with_env("AIGC_DEVICE", "tpu9", get_device), "AIGC_DEVICE"),
        error("runtime", "pretrained.load", "unknown name", lambda: pretrained.load("no-such-model"), "no-such-model"),
        error("runtime", "pretrained.load", "name with ..", lambda: pretrained.load("../digits-vae"), "name"),
        error("runtime", "pretrained.load", "device='tpu'", lambda: pretrained.load("digits-vae", device="tpu"), "device"),
        documented("runtime", "pretrained.load", "device='cuda:99' is a RuntimeError naming it (as get_device)",
                   lambda: raised(RuntimeError, lambda: pretrained.load("digits-vae", device="cuda:99")),
                   lambda err: err is not None and "cuda:99" in str(err)),
        error("runtime", "pretrained.info", "name is None", lambda: pretrained.info(None), "checkpoint"),
        documented("runtime", "pretrained.available", "sorted names of the shipped checkpoints", pretrained.available,
                   lambda names: names == sorted(names) and "digits-ddpm" in names),
        error("gpt", "GPT.from_huggingface", "a model name instead of a model",
              lambda: gpt().model.from_huggingface("gpt2"), "model"),
        # GPT.generate (the course map's signature) on the shipped code-gpt model
        error("gpt", "GPT.generate", "float idx", lambda: gpt().model.generate(idx.float(), 1), "idx"),
        error("gpt", "GPT.generate", "idx of rank 1", lambda: gpt().model.generate(idx[0], 1), "idx"),
        error("gpt", "GPT.generate", "token id beyond the vocabulary",
              lambda: gpt().model.generate(idx + 10**6, 1), "idx"),
        error("gpt", "GPT.generate", "max_new_tokens=-1", lambda: gpt().model.generate(idx, -1), "max_new_tokens"),
        error("gpt", "GPT.generate", "temperature=nan", lambda: gpt().model.generate(idx, 1, temperature=NAN), "temperature"),
        error("gpt", "GPT.generate", "temperature=inf", lambda: gpt().model.generate(idx, 1, temperature=INF), "temperature"),
        error("gpt", "GPT.generate", "top_k=0", lambda: gpt().model.generate(idx, 1, top_k=0), "top_k"),
        error("gpt", "GPT.generate", "top_p=1.5", lambda: gpt().model.generate(idx, 1, top_p=1.5), "top_p"),
        documented("gpt", "GPT.generate", "max_new_tokens=0 returns idx", lambda: gpt().model.generate(idx, 0),
                   lambda t: bool(torch.equal(t, idx))),
        error("pipelines", "code-gpt", "prompt is an int", lambda: gpt()(3, max_new_tokens=1), "prompt"),
        error("pipelines", "code-gpt", "empty prompt", lambda: gpt()("", max_new_tokens=1), "prompt"),
        error("pipelines", "code-gpt", "max_new_tokens=-1", lambda: gpt()("def", max_new_tokens=-1), "max_new_tokens"),
        error("pipelines", "code-gpt", "temperature=-1", lambda: gpt()("def", max_new_tokens=1, temperature=-1.0), "temperature"),
        error("pipelines", "code-gpt", "temperature=inf", lambda: gpt()("def", max_new_tokens=1, temperature=INF),
              "temperature"),
        error("pipelines", "code-gpt", "top_k=0", lambda: gpt()("def", max_new_tokens=1, top_k=0), "top_k"),
        error("pipelines", "code-gpt", "seed=-1", lambda: gpt()("def", max_new_tokens=1, seed=-1), "seed"),
        documented("pipelines", "code-gpt", "returns prompt + text", lambda: gpt()("def", max_new_tokens=2, seed=0),
                   lambda s: isinstance(s, str) and s.startswith("def")),
    ]
    for name in ("tiny-chat-base", "tiny-chat-sft", "tiny-chat-dpo"):
        rows += [
            error("pipelines", name, "instruction is an int", lambda name=name: load(name)(3), "instruction"),
            error("pipelines", name, "temperature=-1", lambda name=name: load(name)("reverse cat", temperature=-1.0),
                  "temperature"),
            error("pipelines", name, "temperature=inf", lambda name=name: load(name)("reverse cat", temperature=INF),
                  "temperature"),
            error("pipelines", name, "seed=-1", lambda name=name: load(name)("reverse cat", temperature=1.0, seed=-1), "seed"),
        ]
    rows += [
        error("pipelines", "tiny-chat-sft", "respond to no instructions", lambda: chat().respond([]), "prompts"),
        *[error("pipelines", name, "score: one response for two prompts",
                lambda name=name: load(name).score(["a", "b"], ["c"], chat().tokenizer), "responses")
          for name in ("tiny-chat-reward", "tiny-chat-reward-weak")],
        error("pipelines", "char-lstm", "generate: empty prompt", lambda: load("char-lstm").generate("", 1), "prompt"),
        error("pipelines", "char-lstm", "generate: temperature=nan", lambda: load("char-lstm").generate("a", 1, NAN),
              "temperature"),
        error("pipelines", "char-lstm", "generate: num_chars=-1", lambda: load("char-lstm").generate("a", -1), "num_chars"),
        error("pipelines", "char-lstm", "bits_per_char of one character", lambda: load("char-lstm").bits_per_char("a"),
              "text"),
        error("pipelines", "digits-pixel-gpt", "sample n=0", lambda: load("digits-pixel-gpt").sample(0), "n"),
        error("pipelines", "digits-pixel-gpt", "sample temperature=nan",
              lambda: load("digits-pixel-gpt").sample(1, temperature=NAN), "temperature"),
        error("pipelines", "digits-pixel-gpt", "sample temperature=inf",
              lambda: load("digits-pixel-gpt").sample(1, temperature=INF), "temperature"),
        error("pipelines", "digits-pixel-gpt", "sample seed=-1", lambda: load("digits-pixel-gpt").sample(1, seed=-1), "seed"),
        error("pipelines", "digits-pixel-gpt", "log_likelihood of flat images",
              lambda: load("digits-pixel-gpt").log_likelihood(torch.zeros(2, 64)), "images"),
        error("pipelines", "digits-pixel-gpt", "log_likelihood of NaN images",
              lambda: load("digits-pixel-gpt").log_likelihood(nan_digit), "images"),
        error("pipelines", "digits-classifier", "images of rank 2", lambda: load("digits-classifier")(torch.zeros(2, 64)),
              "images"),
    ]
    # pipelines the course map promises, checked as soon as their checkpoints ship
    shipped = set(pretrained.available())
    if "text-to-image" in shipped:
        rows += [error("pipelines", "text-to-image", f"{o}={b!r}",
                       lambda o=o, b=b: load("text-to-image")("a red circle", num_inference_steps=1, **{o: b}), o)
                 for o, b in (("guidance_scale", INF), ("guidance_scale", NAN), ("eta", -1.0), ("num_inference_steps", 0),
                              ("seed", -1))]
        rows.append(error("pipelines", "text-to-image", "prompt is an int", lambda: load("text-to-image")(3), "prompt"))
    if "scene-judge" in shipped:
        rows += [error("pipelines", "scene-judge", "predict: images of rank 3",
                       lambda: load("scene-judge").predict(torch.zeros(3, 32, 32)), "images"),
                 error("pipelines", "scene-judge", "predict: 16x16 images",
                       lambda: load("scene-judge").predict(torch.zeros(1, 3, 16, 16)), "images")]
    if "scene-clip" in shipped:
        rows += [error("pipelines", "scene-clip", "encode_images: 16x16 images",
                       lambda: load("scene-clip").encode_images(torch.zeros(1, 3, 16, 16)), "images"),
                 error("pipelines", "scene-clip", "encode_texts: a str", lambda: load("scene-clip").encode_texts("a red circle"),
                       "texts"),
                 error("pipelines", "scene-clip", "encode_texts: unknown words",
                       lambda: load("scene-clip").encode_texts(["a purple star"]), "texts")]
    if "captioner" in shipped:
        rows += [error("pipelines", "captioner", "NaN images", lambda: load("captioner")(torch.full((1, 3, 16, 16), NAN)),
                       "images"),
                 error("pipelines", "captioner", "num_beams=0", lambda: load("captioner")(torch.zeros(1, 3, 16, 16), num_beams=0),
                       "num_beams")]
    if "text-to-speech" in shipped:
        rows.append(error("pipelines", "text-to-speech", "text is an int", lambda: load("text-to-speech")(3), "text"))
        rows += [error("pipelines", "text-to-speech", case, lambda t=t: load("text-to-speech")(t), "text")
                 for case, t in (("empty text", ""), ("only spaces", "   "), ("a character outside the vocabulary", "four 2"),
                                 ("a word outside the vocabulary", "four eleven"), ("five words", "one two three four five"),
                                 ("empty list", []), ("bytes", b"one"))]
        rows += [error("pipelines", "text-to-speech", f"{o}={b!r}", lambda o=o, b=b: load("text-to-speech")("one", **{o: b}), o)
                 for o, b in (("seed", -1), ("seed", True), ("temperature", -1.0), ("temperature", NAN), ("top_k", 0),
                              ("griffin_lim_iters", 0))]
    if "speech-recognizer" in shipped:
        rows += [error("pipelines", "speech-recognizer", case, lambda x=x: load("speech-recognizer")(x), "features")
                 for case, x in (("2-D features", torch.zeros(10, 80)), ("40 mel bands", torch.zeros(1, 10, 40)))]
    if "text-to-video" in shipped:
        rows += [error("pipelines", "text-to-video", f"{o}={b!r}",
                       lambda o=o, b=b: load("text-to-video")("a ball", num_inference_steps=1, **{o: b}), o)
                 for o, b in (("guidance_scale", INF), ("num_frames", 0), ("seed", -1))]
    return rows


def speech_probes() -> list[Probe]:
    """The public functions of ``aigc_course.speech`` (the pipelines are probed with the other pipelines)."""
    from aigc_course import speech
    from aigc_course.speech.codec import MelCodebook

    codebook = MelCodebook(4, n_mels=80)
    return [
        error("speech", "log_mel", "NaN audio", lambda: speech.log_mel(np.full(400, NAN, dtype=np.float32)), "audio"),
        error("speech", "log_mel", "empty audio", lambda: speech.log_mel(np.zeros(0, dtype=np.float32)), "audio"),
        error("speech", "log_mel", "2-D audio", lambda: speech.log_mel(np.zeros((2, 400), dtype=np.float32)), "audio"),
        error("speech", "digit_texts", "n=-1", lambda: speech.digit_texts(-1), "n"),
        error("speech", "digit_texts", "split='test'", lambda: speech.digit_texts(2, split="test"), "split"),
        error("speech", "digit_texts", "max_digits=9", lambda: speech.digit_texts(2, max_digits=9), "max_digits"),
        error("speech", "check_words", "empty text", lambda: speech.check_words(""), "text"),
        error("speech", "check_words", "digits as numerals", lambda: speech.check_words("4 2"), "text"),
        error("speech", "MelCodebook", "num_codes=1", lambda: MelCodebook(1), "num_codes"),
        error("speech", "MelCodebook.decode", "float codes", lambda: codebook.decode(torch.zeros(3)), "codes"),
        error("speech", "MelCodebook.decode", "codes out of range", lambda: codebook.decode(torch.tensor([4])), "codes"),
        error("speech", "MelCodebook.encode", "40 mel bands", lambda: codebook.encode(torch.zeros(3, 40)), "log_mel"),
        error("speech", "transcribe", "3-D audio", lambda: speech.transcribe(torch.zeros(1, 1, 400), speech.SpeechRecognizer()),
              "audio"),
        error("speech", "transcribe", "empty list", lambda: speech.transcribe([], speech.SpeechRecognizer()), "audio"),
        error("speech", "recognition_accuracy", "a text per clip missing",
              lambda: speech.recognition_accuracy(torch.zeros(2, 4000), ["one"], speech.SpeechRecognizer()), "texts"),
        error("speech", "recognition_accuracy", "a text outside the vocabulary",
              lambda: speech.recognition_accuracy(torch.zeros(1, 4000), ["eleven"], speech.SpeechRecognizer()), "texts[0]"),
    ]


def seq2seq_probes() -> list[Probe]:
    from aigc_course import decoding
    from aigc_course.seq2seq import EncoderDecoderTransformer, TransformerEncoder

    @functools.lru_cache(maxsize=1)
    def model():
        torch.manual_seed(0)
        return EncoderDecoderTransformer(vocab_size=7, block_size=8, n_embd=16, n_head=2).eval()

    src, idx = torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long)
    return [
        error("seq2seq", "EncoderDecoderTransformer.encode", "float source", lambda: model().encode(torch.zeros(2, 3)),
              "source"),
        error("seq2seq", "EncoderDecoderTransformer.encode", "source longer than source_block_size",
              lambda: model().encode(torch.zeros(2, 9, dtype=torch.long)), "source_block_size"),
        error("seq2seq", "EncoderDecoderTransformer", "source_mask of the wrong shape",
              lambda: model()(src, idx, source_mask=torch.ones(2, 4, dtype=torch.bool)), "mask"),
        error("seq2seq", "EncoderDecoderTransformer", "float source_mask",
              lambda: model()(src, idx, source_mask=torch.ones(2, 3)), "mask"),
        error("seq2seq", "TransformerDecoder", "memory of another batch size",
              lambda: model().decoder(idx, torch.zeros(3, 4, 16)), "memory"),
        error("seq2seq", "TransformerDecoder", "memory_mask without memory",
              lambda: model().decoder(idx, memory_mask=torch.ones(2, 4, dtype=torch.bool)), "memory_mask"),
        error("seq2seq", "TransformerEncoder", "n_layer=0", lambda: TransformerEncoder(n_layer=0), "n_layer"),
        error("seq2seq", "EncoderDecoderTransformer.generate", "num_beams=0",
              lambda: model().generate(src, idx[:, :1], 3, num_beams=0), "num_beams"),
        error("decoding", "beam_search", "num_beams=0",
              lambda: decoding.beam_search(model().decoder, idx, 2, num_beams=0), "num_beams"),
        error("decoding", "beam_search", "num_beams=True",
              lambda: decoding.beam_search(model().decoder, idx, 2, num_beams=True), "num_beams"),
        error("decoding", "beam_search", "float prompt",
              lambda: decoding.beam_search(model().decoder, torch.zeros(2, 1), 2, num_beams=2), "prompt"),
        error("decoding", "beam_search", "stop_token=-1",
              lambda: decoding.beam_search(model().decoder, idx, 2, num_beams=2, stop_token=-1), "stop_token"),
    ]


def captioning_probes() -> list[Probe]:
    from aigc_course.captioning import CaptionVocabulary, caption_scores

    return [
        error("captioning", "CaptionVocabulary.encode", "an unknown word",
              lambda: CaptionVocabulary().encode("a purple circle"), "vocabulary"),
        error("captioning", "CaptionVocabulary.encode", "text is an int", lambda: CaptionVocabulary().encode(3), "text"),
        error("captioning", "CaptionVocabulary", "no words", lambda: CaptionVocabulary([]), "words"),
        error("captioning", "caption_scores", "empty", lambda: caption_scores([], []), "captions"),
    ]


def retrieval_and_applications_probes() -> list[Probe]:
    from aigc_course import retrieval
    from aigc_course.applications import marketing, news, practice, support, words

    fitted = lambda: retrieval.TfidfEncoder().fit(["reset the kettle", "the price"])  # noqa: E731
    index = lambda: retrieval.VectorIndex(fitted()).add(["reset the kettle", "the price"])  # noqa: E731
    chat = lambda: load("tiny-chat-sft")  # noqa: E731
    return [
        error("retrieval", "cosine_similarity", "queries of rank 1",
              lambda: retrieval.cosine_similarity(torch.ones(3), torch.ones(2, 3)), "queries"),
        error("retrieval", "cosine_similarity", "integer keys",
              lambda: retrieval.cosine_similarity(torch.ones(2, 3), torch.ones(2, 3, dtype=torch.long)), "keys"),
        error("retrieval", "cosine_similarity", "widths differ",
              lambda: retrieval.cosine_similarity(torch.ones(2, 3), torch.ones(2, 4)), "queries and keys"),
        documented("retrieval", "cosine_similarity", "a zero key scores 0",
                   lambda: retrieval.cosine_similarity(torch.ones(1, 3), torch.zeros(2, 3)), all_zero),
        error("retrieval", "top_k", "k larger than the index", lambda: retrieval.top_k(torch.rand(2, 3), 4), "k"),
        error("retrieval", "top_k", "k=0", lambda: retrieval.top_k(torch.rand(2, 3), 0), "k"),
        error("retrieval", "top_k", "k=True", lambda: retrieval.top_k(torch.rand(2, 3), True), "k"),
        error("retrieval", "top_k", "scores of rank 3", lambda: retrieval.top_k(torch.rand(1, 2, 3), 1), "scores"),
        error("retrieval", "TfidfEncoder.fit", "a single string", lambda: retrieval.TfidfEncoder().fit("abc"), "texts"),
        error("retrieval", "TfidfEncoder.fit", "empty", lambda: retrieval.TfidfEncoder().fit([]), "texts"),
        error("retrieval", "TfidfEncoder.encode", "before fit", lambda: retrieval.TfidfEncoder().encode(["a"]), "fit"),
        error("retrieval", "TfidfEncoder.encode", "an int among the texts", lambda: fitted().encode(["a", 3]), "texts"),
        error("retrieval", "VectorIndex", "no encode method", lambda: retrieval.VectorIndex(object()), "encoder"),
        error("retrieval", "VectorIndex.add", "payloads of another length",
              lambda: retrieval.VectorIndex(fitted()).add(["a"], [1, 2]), "payloads"),
        error("retrieval", "VectorIndex.search", "k larger than the index", lambda: index().search(["reset"], k=3), "k"),
        error("retrieval", "VectorIndex.search", "queries is a str", lambda: index().search("reset"), "queries"),
        error("retrieval", "LanguageModelEncoder.encode", "an empty text",
              lambda: retrieval.LanguageModelEncoder(chat().model, chat().tokenizer).encode([""]), "texts"),
        error("applications", "support.questions", "split='test'", lambda: support.questions("test"), "split"),
        error("applications", "support.updated_faq", "an unknown intent",
              lambda: support.updated_faq({"colour": "Blue."}), "changes"),
        error("applications", "support.open_book_examples", "n=0", lambda: support.open_book_examples(0), "n"),
        error("applications", "support.accuracy", "lengths differ",
              lambda: support.accuracy(["a"], support.questions()), "answers"),
        error("applications", "practice.check_item", "sentence is None", lambda: practice.check_item(None), "sentence"),
        error("applications", "practice.split_sentences", "text is bytes", lambda: practice.split_sentences(b"a."), "text"),
        error("applications", "practice.propose", "n_streams=0",
              lambda: practice.propose(chat().model, chat().tokenizer, 0), "n_streams"),
        error("applications", "practice.propose", "length beyond the context",
              lambda: practice.propose(chat().model, chat().tokenizer, 1, length=96), "length"),
        error("applications", "practice.summarise", "no items", lambda: practice.summarise([]), "items"),
        error("applications", "news.MatchRow", "a draw", lambda: news.MatchRow("Lions", "Rovers", 1, 1, 50, "Leeds"),
              "home_goals"),
        error("applications", "news.MatchRow", "minute=0", lambda: news.MatchRow("Lions", "Rovers", 2, 1, 0, "Leeds"),
              "minute"),
        error("applications", "news.match_rows", "split='test'", lambda: news.match_rows(3, "test"), "split"),
        error("applications", "news.match_rows", "n=0", lambda: news.match_rows(0), "n"),
        error("applications", "news.describe", "phrasing=3",
              lambda: news.describe(news.match_rows(1)[0], 3), "phrasing"),
        error("applications", "news.check_report", "row is a dict", lambda: news.check_report("a .", {}), "row"),
        error("applications", "news.faithfulness", "lengths differ",
              lambda: news.faithfulness(["a ."], news.match_rows(2)), "sentences"),
        error("applications", "news.source_ids", "phrasings of another length",
              lambda: news.source_ids(news.match_rows(2), news.vocabulary(), [0]), "phrasings"),
        error("applications", "words.Vocabulary.encode", "an unknown word",
              lambda: words.Vocabulary(["a"]).encode("a b"), "text"),
        error("applications", "words.Vocabulary.encode", "text is a list",
              lambda: words.Vocabulary(["a"]).encode(["a"]), "text"),
        error("applications", "words.shifted_ids", "no texts", lambda: words.shifted_ids([], words.Vocabulary(["a"])),
              "texts"),
        error("applications", "marketing.blurbs", "n=0", lambda: marketing.blurbs(0), "n"),
        error("applications", "marketing.check_blurb", "an unknown product",
              lambda: marketing.check_blurb("Nimbus Max : hi .", "Nimbus Max"), "name"),
        error("applications", "marketing.claims", "text is None", lambda: marketing.claims(None), "text"),
        error("applications", "marketing.hallucination_rate", "no checks", lambda: marketing.hallucination_rate([]),
              "checks"),
    ]


def memory_probes() -> list[Probe]:
    from aigc_course.training import training_memory

    net = torch.nn.Linear(2, 1)

    def loss():
        return net(torch.ones(1, 2)).sum()

    return [
        error("training", "training_memory", "model is a str", lambda: training_memory("net", loss), "model"),
        error("training", "training_memory", "loss_fn is a tensor", lambda: training_memory(net, loss()), "loss_fn"),
        error("training", "training_memory", "optimizer_slots=-1",
              lambda: training_memory(net, loss, optimizer_slots=-1), "optimizer_slots"),
        error("training", "training_memory", "optimizer_slots=2.0",
              lambda: training_memory(net, loss, optimizer_slots=2.0), "optimizer_slots"),
        error("attention", "peak_memory", "grad='yes'", lambda: attention.peak_memory(loss, grad="yes"), "grad"),
    ]


def tools_probes() -> list[Probe]:
    """Chapter 7: aigc_course.interop and aigc_course.distributed (checks run before any optional import)."""
    from torch import nn

    from aigc_course import distributed, interop
    from aigc_course.distributed import DistributedContext

    env = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}
    schedule = diff.NoiseSchedule("linear", 50)
    return [
        error("distributed", "shard", "5 rows on 2 ranks",
              lambda: distributed.shard(torch.zeros(5, 2), DistributedContext(world_size=2)), "batch"),
        error("distributed", "shard", "a list", lambda: distributed.shard([1, 2], DistributedContext()), "batch"),
        error("distributed", "setup", "WORLD_SIZE not a number",
              lambda: distributed.setup("cpu", environ={"WORLD_SIZE": "two"}), "WORLD_SIZE"),
        error("distributed", "setup", "RANK missing", lambda: distributed.setup("cpu", environ={"WORLD_SIZE": "2"}),
              "RANK"),
        error("distributed", "setup", "backend='mpi'", lambda: distributed.setup("cpu", backend="mpi", environ=env),
              "backend"),
        error("distributed", "wrap", "not a module", lambda: distributed.wrap("gpt", DistributedContext()), "model"),
        error("distributed", "launch_local", "world_size=0", lambda: distributed.launch_local(print, 0), "world_size"),
        error("interop", "to_transformers_tokenizer", "a character tokenizer",
              lambda: interop.to_transformers_tokenizer(CharTokenizer.train("abc")), "tokenizer"),
        error("interop", "diffusers_scheduler", "kind='euler'", lambda: interop.diffusers_scheduler(schedule, "euler"),
              "kind"),
        error("interop", "diffusers_scheduler", "a schedule name", lambda: interop.diffusers_scheduler("linear"),
              "schedule"),
        error("interop", "export_onnx", "a list of inputs",
              lambda: interop.export_onnx(nn.Linear(2, 2), [torch.zeros(1, 2)], input_names=["x"], output_names=["y"]),
              "example_inputs"),
        error("interop", "export_onnx", "too few input names",
              lambda: interop.export_onnx(nn.Linear(2, 2), (torch.zeros(1, 2),), input_names=[], output_names=["y"]),
              "input_names"),
        error("interop", "export_onnx", "not a module",
              lambda: interop.export_onnx("gpt", (torch.zeros(1, 2),), input_names=["x"], output_names=["y"]), "module"),
        error("interop", "export_gpt", "not a GPT", lambda: interop.export_gpt(nn.Linear(2, 2)), "model"),
        error("interop", "OnnxModel", "an int", lambda: interop.OnnxModel(3), "model"),
        error("interop", "model_card", "unknown name", lambda: interop.model_card("no-such-model"), "checkpoint"),
        error("interop", "data_sources", "missing file", lambda: interop.data_sources("/nonexistent/LICENSE-DATA.md"),
              "path"),
        error("interop", "fastest_seconds", "no functions", lambda: interop.fastest_seconds({}), "fns"),
    ]


# --------------------------------------------------------------------------- watermark and memorisation (book 8.1, 8.2)


def watermark_probes() -> list[Probe]:
    from aigc_course.metrics.memorisation import NGramIndex
    from aigc_course.watermark import Watermark, generate_watermarked, random_token_edits

    wm = Watermark(10)
    ids = torch.tensor([[1, 2, 3]])
    return [
        error("watermark", "Watermark", "vocab_size=0", lambda: Watermark(0), "vocab_size"),
        error("watermark", "Watermark", "gamma=1", lambda: Watermark(10, gamma=1.0), "gamma"),
        error("watermark", "Watermark", "gamma=nan", lambda: Watermark(10, gamma=NAN), "gamma"),
        error("watermark", "Watermark", "delta=inf", lambda: Watermark(10, delta=INF), "delta"),
        error("watermark", "Watermark", "hash_key=True", lambda: Watermark(10, hash_key=True), "hash_key"),
        error("watermark", "Watermark.score", "one token", lambda: wm.score(torch.tensor([[1]])), "token_ids"),
        error("watermark", "Watermark.score", "float ids", lambda: wm.score(ids.float()), "token_ids"),
        error("watermark", "Watermark.score", "id out of range", lambda: wm.score(torch.tensor([1, 10])), "token_ids"),
        error("watermark", "Watermark.score", "rank 3", lambda: wm.score(ids[None]), "token_ids"),
        error("watermark", "Watermark.detect", "z_threshold=nan", lambda: wm.detect(ids, z_threshold=NAN), "z_threshold"),
        error("watermark", "Watermark.__call__", "wrong vocabulary", lambda: wm(torch.zeros(1, 9), ids), "logits"),
        error("watermark", "generate_watermarked", "watermark is a str",
              lambda: generate_watermarked(None, ids, 2, "key"), "watermark"),
        error("watermark", "random_token_edits", "rate=-0.1",
              lambda: random_token_edits(ids, -0.1, 10), "rate"),
        error("watermark", "random_token_edits", "1-D ids", lambda: random_token_edits(ids[0], 0.1, 10), "token_ids"),
        error("memorisation", "NGramIndex", "empty corpus", lambda: NGramIndex([]), "corpus_ids"),
        error("memorisation", "NGramIndex", "float corpus", lambda: NGramIndex(torch.rand(5)), "corpus_ids"),
        error("memorisation", "NGramIndex.occurs", "n=0", lambda: NGramIndex([1, 2]).occurs([1], 0), "n"),
        error("memorisation", "NGramIndex.longest_match", "2-D ids",
              lambda: NGramIndex([1, 2]).longest_match([[1, 2]]), "ids"),
        error("memorisation", "NGramIndex.ngram_overlap", "negative ids",
              lambda: NGramIndex([1, 2]).ngram_overlap([-1, 2], 1), "ids"),
    ]


PROBES: list[Probe] = [
    *attention_probes(), *memory_probes(), *llama_probes(), *sampling_probes(), *diffusion_probes(), *diffusion_pipeline_probes(), *vae_probes(),
    *gan_probes(), *metrics_probes(), *data_probes(), *multimodal_probes(), *scaling_probes(), *runtime_and_text_probes(),
    *speech_probes(), *seq2seq_probes(), *captioning_probes(), *retrieval_and_applications_probes(),
    *tools_probes(),
    *watermark_probes(),
]


def _param(probe: Probe):
    marks = [pytest.mark.xfail(reason=f"owned by {probe.owner}", strict=False)] if probe.owner else []
    return pytest.param(probe, id=probe.id, marks=marks)


@pytest.mark.parametrize("probe", [_param(p) for p in PROBES])
def test_bad_input(probe: Probe):
    result = outcome(probe)
    assert result == "pass", f"{probe.id}: {result}"


def test_every_shipped_checkpoint_is_probed():
    probed = {p.target for p in PROBES if p.module == "pipelines"}
    assert set(pretrained.available()) <= probed, sorted(set(pretrained.available()) - probed)


def test_probe_ids_are_unique():
    ids = [p.id for p in PROBES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
