"""The chat template, the character vocabulary, batching with a response mask, and decoding.

A chat model sees one string per conversation turn pair::

    <|user|>reverse the word cat
    <|assistant|>tac<|end|>

Each marker is a single special character in the vocabulary (``USER``, ``ASSISTANT``,
``END``), so the template costs three tokens; :func:`show` prints them readably. The model
is asked to continue after ``<|assistant|>`` and stops at ``<|end|>``.
"""

from __future__ import annotations

import string

import torch

from aigc_course import decoding
from aigc_course.sampling import make_sampler
from aigc_course.tokenizers import CharTokenizer

USER, ASSISTANT, END = "\x01", "\x02", "\x03"
SPECIAL = {USER: "<|user|>", ASSISTANT: "<|assistant|>", END: "<|end|>"}
ALPHABET = [USER, ASSISTANT, END, "\n"] + sorted(set(" .,!?'+-:" + string.ascii_letters + string.digits))


def chat_tokenizer() -> CharTokenizer:
    """The fixed character vocabulary shared by every model of this chapter."""
    return CharTokenizer(ALPHABET)


def format_prompt(instruction: str) -> str:
    """``<|user|>instruction\\n<|assistant|>``: the text the model continues."""
    if not isinstance(instruction, str) or not instruction:
        raise ValueError("instruction must be a non-empty str")
    return f"{USER}{instruction}\n{ASSISTANT}"


def format_chat(instruction: str, response: str) -> str:
    """The full training string: prompt, response, ``<|end|>``."""
    return format_prompt(instruction) + response + END


def show(text: str) -> str:
    """Replace the special characters by their readable names."""
    for ch, name in SPECIAL.items():
        text = text.replace(ch, name)
    return text


def encode_pairs(prompts: list[str], responses: list[str], tokenizer: CharTokenizer, block_size: int):
    """Token ids and the response-only loss mask for (instruction, response) pairs.

    Returns ``ids (B, T)``, ``targets (B, T)`` and ``mask (B, T)``: ``targets[b, t]`` is the
    token after position ``t``; it is ``-1`` (ignored by the loss) unless that token belongs
    to the response or its ``<|end|>``, and on padding. ``mask`` is ``targets != -1`` as
    floats. Sequences are right-padded; ``T`` is the longest sequence minus one.
    """
    if len(prompts) != len(responses):
        raise ValueError(f"got {len(prompts)} prompts but {len(responses)} responses")
    if not prompts:
        raise ValueError("the data set is empty: pass at least one (prompt, response) pair")
    rows = []
    for p, r in zip(prompts, responses, strict=True):
        head = tokenizer.encode(format_prompt(p))
        tail = tokenizer.encode(r + END)
        if len(head) + len(tail) - 1 > block_size:
            raise ValueError(
                f"prompt + response is {len(head) + len(tail)} tokens, longer than the context "
                f"block_size={block_size} allows ({block_size + 1}): {show(format_chat(p, r))!r}"
            )
        rows.append((head, tail))
    width = max(len(h) + len(t) for h, t in rows) - 1
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    targets = torch.full((len(rows), width), -1, dtype=torch.long)
    for b, (head, tail) in enumerate(rows):
        seq = head + tail
        ids[b, : len(seq) - 1] = torch.tensor(seq[:-1])
        # position t predicts token t+1; the response starts at token len(head)
        targets[b, len(head) - 1 : len(seq) - 1] = torch.tensor(tail)
    return ids, targets, (targets != -1).float()


def encode_examples(examples, tokenizer: CharTokenizer, block_size: int, responses: list[str] | None = None):
    """:func:`encode_pairs` for :class:`~aigc_course.alignment.tasks.Example` objects."""
    if not examples:
        raise ValueError("the data set is empty: pass at least one example")
    responses = [e.response for e in examples] if responses is None else responses
    return encode_pairs([e.prompt for e in examples], responses, tokenizer, block_size)


@torch.no_grad()
def generate(
    model,
    prompts: list[str],
    tokenizer: CharTokenizer,
    max_new_tokens: int = 48,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
) -> list[str]:
    """Responses to ``prompts`` (instructions), decoded until ``<|end|>``.

    Prompts are grouped by length so that each group decodes as one batch in the course's
    loop (:func:`aigc_course.decoding.generate`: a KV cache, one new token per row per
    step, ``<|end|>`` as the stop token); a group stops when every row has emitted it, or
    at the context's end. ``temperature=0`` is greedy, otherwise samples from
    ``softmax(z / T)``.
    """
    if isinstance(prompts, str) or not isinstance(prompts, (list, tuple)) or not prompts:
        raise ValueError(f"prompts must be a non-empty list of instructions (str), got {type(prompts).__name__}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative int, got {max_new_tokens!r}")
    sampler = make_sampler(temperature)
    device = model.lm_head.weight.device
    block = model.config.block_size
    heads = [tokenizer.encode(format_prompt(p)) for p in prompts]
    end_id = tokenizer.stoi[END]
    groups: dict[int, list[int]] = {}
    for i, h in enumerate(heads):
        if len(h) >= block:
            raise ValueError(f"a prompt of {len(h)} tokens leaves no room in block_size={block}")
        groups.setdefault(len(h), []).append(i)
    out: list[str] = [""] * len(prompts)
    for length, members in sorted(groups.items()):
        idx = torch.tensor([heads[i] for i in members], device=device)
        tokens = decoding.generate(model, idx, min(max_new_tokens, block - length), sampler,
                                   stop_token=end_id, generator=generator)
        for row, i in enumerate(members):
            out[i] = tokenizer.decode(tokens[row, length:].tolist()).split(END)[0]
    return out
