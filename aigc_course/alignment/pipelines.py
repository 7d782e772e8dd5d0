"""Loading the chapter's checkpoints: ``pretrained.load("tiny-chat-sft")`` and friends.

:class:`ChatPipeline` wraps a GPT and the chat vocabulary: ``pipe("reverse the word cat")``
returns the response. The reward model loads as
:class:`~aigc_course.alignment.reward.RewardModel` directly.
"""

from __future__ import annotations

import torch

from aigc_course.alignment.chat import chat_tokenizer, format_prompt, generate
from aigc_course.alignment.tasks import evaluate
from aigc_course.gpt import GPT
from aigc_course.pretrained import keyword_options
from aigc_course.runtime import make_generator


class ChatPipeline:
    """A chat-tuned (or base) GPT: ``pipe(instruction) -> response``; ``pipe.model`` is the GPT."""

    # how aigc_course.pretrained builds it: the GPT from config["model"]; config["tokenizer"] must
    # be the chapter's fixed vocabulary, the one the model was trained with
    checkpoint_parts = {"model": GPT}
    checkpoint_settings = {"tokenizer": dict}

    def __init__(self, model: GPT, config: dict | None = None):
        self.model = model
        self.tokenizer = chat_tokenizer()
        self.config = dict(config or {})

    @property
    def device(self) -> torch.device:
        return self.model.lm_head.weight.device

    @keyword_options("temperature", "seed")
    def __call__(self, instruction: str, *, temperature: float = 0.0, seed: int | None = None) -> str:
        return self.respond([instruction], temperature=temperature, seed=seed)[0]

    @keyword_options("temperature", "seed", "max_new_tokens")
    def respond(self, instructions: list[str], *, temperature: float = 0.0, seed: int | None = None,
                max_new_tokens: int = 48) -> list[str]:
        """Responses to a batch of instructions (greedy by default).

        With ``temperature > 0`` an int ``seed`` repeats the responses exactly and ``None`` draws
        from torch's global RNG (:func:`~aigc_course.runtime.make_generator`); greedy decoding
        draws nothing.
        """
        gen = make_generator(seed) if temperature != 0 or seed is not None else None
        return generate(self.model, list(instructions), self.tokenizer, max_new_tokens, temperature, gen)

    @keyword_options("temperature", "seed")
    def evaluate(self, examples, *, temperature: float = 0.0, seed: int | None = None) -> dict:
        """:func:`~aigc_course.alignment.tasks.evaluate` on this model's responses (greedy by default)."""
        responses = self.respond([e.prompt for e in examples], temperature=temperature, seed=seed)
        result = evaluate(examples, responses)
        result["responses"] = responses
        return result

    def continue_text(self, text: str, max_new_tokens: int = 60) -> str:
        """Greedy raw continuation of any text (how a base model is used)."""
        ids = torch.tensor([self.tokenizer.encode(text)], device=self.device)
        out = self.model.generate(ids, max_new_tokens, temperature=0.0)
        return self.tokenizer.decode(out[0, ids.shape[1]:].tolist())

    def prompt_text(self, instruction: str) -> str:
        return format_prompt(instruction)

    @classmethod
    def from_parts(cls, config: dict, model: GPT) -> ChatPipeline:
        expected = chat_tokenizer().to_dict()
        if config["tokenizer"] != expected:
            raise ValueError("tokenizer must be the chapter's character vocabulary chat_tokenizer(), "
                             f"{expected}; got {config['tokenizer']}")
        return cls(model, config)
