"""Token sequences every autoregressive model of the course produced before the decoding loop
was unified (recorded on the CPU in ``tests/golden/decoding.json``).

``tests/test_decoding.py`` regenerates each case with today's code and demands identical
tokens, so notebook outputs and shipped numbers cannot move. The cases call only public
entry points (``GPT.generate``, the pipelines, ``alignment.generate``, ``CharLSTM.generate``,
``DiscreteAutoregressive.sample``), whose signatures did not change.

Re-record only when a shipped checkpoint is retrained on purpose::

    PYTHONPATH=. .venv/bin/python -m tests.decoding_cases --record
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

GOLDEN = Path(__file__).parent / "golden" / "decoding.json"


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tiny_gpt(block_size: int = 32, vocab_size: int = 50):
    from aigc_course.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=2, n_head=2, n_embd=16)).eval()


def case_tiny_gpt() -> dict:
    model = tiny_gpt()
    idx = torch.randint(0, 50, (3, 4), generator=_gen(2))
    settings = {
        "greedy": dict(temperature=0.0),
        "t1": dict(temperature=1.0),
        "top_k5": dict(top_k=5),
        "top_p0.9_t1.3": dict(top_p=0.9, temperature=1.3),
        "top_k10_top_p0.8_t0.7": dict(top_k=10, top_p=0.8, temperature=0.7),
    }
    out = {}
    for name, kw in settings.items():
        for use_cache in (True, False):  # 45 new tokens run past block_size=32
            ids = model.generate(idx, 45, use_cache=use_cache, generator=_gen(7), **kw)
            out[f"{name}/cache={use_cache}"] = ids.tolist()
    return out


def case_code_gpt() -> dict:
    from aigc_course import pretrained

    pipe = pretrained.load("code-gpt", device="cpu")
    model, tok = pipe.model, pipe.tokenizer
    out = {}
    prompt = "def read_config(path):\n    with open(path) as f:\n        return"  # notebook 3.1.5
    ids = torch.tensor([tok.encode(prompt)])
    for name, kw in {"greedy": dict(temperature=0.0), "t0.8": dict(temperature=0.8),
                     "top_k10": dict(temperature=1.0, top_k=10), "top_p0.9": dict(temperature=1.0, top_p=0.9)}.items():
        out[f"3.1.5/{name}"] = model.generate(ids, 120, generator=_gen(0), **kw)[0].tolist()
    ids = torch.tensor([tok.encode("def fibonacci(n):\n    if n")])  # notebook 3.1.6
    for name, kw in {"greedy": dict(temperature=0.0), "t0.9_top_p0.95": dict(temperature=0.9, top_p=0.95)}.items():
        out[f"3.1.6/{name}"] = model.generate(ids, 100, generator=_gen(0), **kw)[0].tolist()
    out["pipe/import_os"] = pipe("import os\n", max_new_tokens=60, temperature=0.7, top_p=0.9, seed=1)
    out["pipe/default"] = pipe("class Stack:\n    def __init__(self):\n        self", max_new_tokens=40, seed=0)
    return out


def case_char_lstm() -> dict:
    from aigc_course import pretrained
    from aigc_course.rnn import CharLSTM, CharLSTMConfig

    lstm = pretrained.load("char-lstm", device="cpu")
    torch.manual_seed(0)
    small = CharLSTM(CharLSTMConfig(embed_dim=8, hidden_size=16)).eval()
    return {
        "char-lstm/t0.8": lstm.generate("def ", 300, temperature=0.8, generator=_gen(3)),  # notebook 1.1.2
        "char-lstm/t1": lstm.generate("import ", 80, generator=_gen(0)),
        "small/t1": small.generate("def ", 50, generator=_gen(1)),
    }


def case_chat() -> dict:
    from aigc_course import pretrained
    from aigc_course.alignment import chat_tokenizer, generate, make_examples
    from aigc_course.gpt import GPT, GPTConfig

    sft = pretrained.load("tiny-chat-sft", device="cpu")
    base = pretrained.load("tiny-chat-base", device="cpu")
    prompts = [e.prompt for e in make_examples(36, split="test", seed=41)]
    tok = chat_tokenizer()
    torch.manual_seed(0)
    random_gpt = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=16)).eval()
    return {
        "sft/greedy": sft.respond(prompts),
        "sft/t1": sft.respond(prompts, temperature=1.0, seed=0),
        "sft/t0.7_global_rng": _with_global_seed(5, lambda: generate(sft.model, prompts[:8], tok, 40, 0.7)),
        "base/continue": base.continue_text("12 plus 7 is", 20),
        "random/t1": generate(random_gpt, prompts[:6], tok, 30, 1.0, _gen(4)),
        "random/greedy": generate(random_gpt, prompts[:6], tok, 70),  # runs into block_size
    }


def _with_global_seed(seed: int, fn):
    torch.manual_seed(seed)
    return fn()


def case_pixel_and_point_gpt() -> dict:
    from aigc_course import pretrained
    from aigc_course.autoregressive import PointGPT

    pipe = pretrained.load("digits-pixel-gpt", device="cpu")
    torch.manual_seed(0)
    point = PointGPT(bins=8, n_layer=1, n_head=2, n_embd=8).eval()
    return {
        "pixel/seed0": (pipe.sample(6, seed=0) * 16).round().long().tolist(),
        "pixel/seed1_t0.8": (pipe.sample(4, seed=1, temperature=0.8) * 16).round().long().tolist(),
        "point/bins": point.sample(20, _gen(1)).tolist(),
        "point/points": point.sample_points(5, _gen(2)).tolist(),
    }


CASES = {
    "tiny_gpt": case_tiny_gpt,
    "code_gpt": case_code_gpt,
    "char_lstm": case_char_lstm,
    "chat": case_chat,
    "pixel_and_point_gpt": case_pixel_and_point_gpt,
}


def record() -> None:
    GOLDEN.parent.mkdir(exist_ok=True)
    results = {name: fn() for name, fn in CASES.items()}
    lines = []
    for name, case in results.items():  # one line per entry: readable diffs, compact file
        entries = ",\n".join(f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in case.items())
        lines.append(f" {json.dumps(name)}: {{\n{entries}\n }}")
    GOLDEN.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        raise SystemExit(__doc__)
    torch.set_num_threads(1)
    record()
