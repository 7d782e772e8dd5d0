"""A customer-service FAQ for a fictional product, and the three ways of answering it (6.1).

The product is the *Nimbus* smart kettle, invented for this chapter. Each FAQ entry is an
*intent* with one short answer and six phrasings of the customer's question, written by hand:
the first three build the index (what a support team would write down), the last three are
**held out** -- never seen when the index is built or a model is trained -- and are the test.

Three systems answer a question:

* **retrieval alone** -- find the nearest indexed question (:mod:`aigc_course.retrieval`) and
  return its stored answer;
* **generation alone** -- a chat model fine-tuned on the indexed (question, answer) pairs
  answers from its weights (closed book);
* **retrieval + generation** -- the retrieved answer is put in the prompt, and a chat model
  fine-tuned to answer from that context writes the reply (open book, "RAG").

Every text uses only the characters of the tiny chat model's vocabulary, and a context, a
question and an answer fit its 96-character window together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

N_INDEX_PHRASINGS = 3

# intent: (answer, six phrasings: three for the index, three held out)
FAQ: dict[str, tuple[str, tuple[str, ...]]] = {
    "reset": ("Hold the dial 10 s.", (
        "how do I reset the kettle?", "how can I do a factory reset?", "the kettle froze, how do I restart it?",
        "what is the way to reset it?", "how to reset my kettle to factory settings?", "it hangs, how do I reboot it?")),
    "warranty": ("2 years of warranty.", (
        "how long is the warranty?", "is the kettle under warranty?", "what does the warranty cover?",
        "how many years of warranty do I get?", "when does my warranty end?", "what is the warranty period?")),
    "descale": ("Descale with vinegar.", (
        "how do I remove limescale?", "how do I descale the kettle?", "there is white scale inside, what now?",
        "how often should I descale it?", "how to get rid of scale?", "what cleans the limescale?")),
    "capacity": ("It holds 1.7 litres.", (
        "how much water does it hold?", "what is the capacity?", "how many litres fit in it?",
        "how big is the kettle?", "what volume of water can I boil?", "how much can I fill it?")),
    "temperature": ("Use the dial, 40-100 C.", (
        "can I choose the temperature?", "how do I set the water temperature?", "can it heat to 80 degrees?",
        "is the temperature adjustable?", "how to pick a lower temperature for tea?", "which temperatures can it reach?")),
    "app": ("Use the Nimbus app.", (
        "how do I connect it to my phone?", "is there an app?", "how do I pair the kettle?",
        "can I control it from my phone?", "how to link the kettle with the app?", "which app do I need?")),
    "wifi": ("Hold the app key 3 s.", (
        "how do I connect to wifi?", "the kettle lost its wifi, what do I do?", "how do I change the wifi network?",
        "it will not join my wifi network?", "how to set up the wireless connection?", "wifi setup steps?")),
    "light": ("Red means heating.", (
        "what does the red light mean?", "why is the light red?", "the ring glows red, is that normal?",
        "what is the red lamp for?", "the light turned red, why?", "is a red light an error?")),
    "beep": ("Mute it in the app.", (
        "how do I stop the beeping?", "can I turn off the sound?", "the kettle beeps too loud?",
        "how to silence the kettle?", "is there a mute option?", "can it work without beeps?")),
    "dry": ("It stops when dry.", (
        "what if I switch it on empty?", "does it have boil dry protection?", "is it safe without water?",
        "will it burn if there is no water?", "what happens when it boils dry?", "is there a dry heat safety cut?")),
    "keep_warm": ("It keeps warm 1 hour.", (
        "can it keep the water warm?", "how long does keep warm last?", "does it keep water hot?",
        "will the water stay hot for a while?", "how do I keep my water warm?", "is there a warming mode?")),
    "returns": ("Return within 30 days.", (
        "can I return the kettle?", "what is the return policy?", "how do I send it back?",
        "I want a refund, what do I do?", "how many days do I have to return it?", "can I get my money back?")),
    "delivery": ("It ships in 3-5 days.", (
        "how long does delivery take?", "when will my order arrive?", "how fast is shipping?",
        "how many days until it is delivered?", "what is the shipping time?", "when does my kettle come?")),
    "price": ("It costs 79 euros.", (
        "how much does it cost?", "what is the price?", "how expensive is the kettle?",
        "what do I pay for it?", "is it cheap?", "what does the Nimbus kettle sell for?")),
    "lid": ("Press the lid button.", (
        "how do I open the lid?", "the lid will not open?", "where is the lid release?",
        "how to lift the top?", "how can I open the top of the kettle?", "the cover is stuck, help?")),
    "dishwasher": ("No dishwasher, please.", (
        "can I put it in the dishwasher?", "is it dishwasher safe?", "can the kettle go in the dishwasher?",
        "may I wash it in a dish machine?", "is machine washing allowed?", "will the dishwasher damage it?")),
}
INTENTS = tuple(FAQ)


@dataclass(frozen=True)
class Question:
    """A customer's question, the intent it asks about, and the answer that intent expects."""

    text: str
    intent: str
    answer: str


def questions(split: str = "index", faq: dict | None = None) -> list[Question]:
    """The indexed (``split="index"``) or held-out (``"held_out"``) questions, intent by intent.

    ``faq`` replaces the answers (an updated FAQ with the same questions); default :data:`FAQ`.
    """
    if split not in ("index", "held_out"):
        raise ValueError(f"split must be 'index' or 'held_out', got {split!r}")
    faq = FAQ if faq is None else faq
    part = slice(0, N_INDEX_PHRASINGS) if split == "index" else slice(N_INDEX_PHRASINGS, None)
    return [Question(q, intent, faq[intent][0]) for intent in FAQ for q in faq[intent][1][part]]


def updated_faq(changes: dict[str, str]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """A copy of :data:`FAQ` with some answers replaced: ``{"warranty": "3 years of warranty."}``."""
    unknown = [k for k in changes if k not in FAQ]
    if unknown:
        raise ValueError(f"changes names unknown intent(s) {unknown}; expected some of {list(INTENTS)}")
    return {k: (changes.get(k, a), qs) for k, (a, qs) in FAQ.items()}


# ---------------------------------------------------------------------------- prompts for the chat model


def open_book_prompt(context: str, question: str) -> str:
    """The retrieval + generation prompt: the retrieved answer, then the question."""
    return f"{context}\n{question}"


@dataclass(frozen=True)
class ChatExample:
    """An (instruction, response) pair in the form :func:`aigc_course.alignment.sft` trains on."""

    prompt: str
    response: str


def closed_book_examples(faq: dict | None = None) -> list[ChatExample]:
    """Question -> answer for every indexed question (generation alone learns these)."""
    return [ChatExample(q.text, q.answer) for q in questions("index", faq)]


def open_book_examples(n: int, seed: int = 0, faq: dict | None = None) -> list[ChatExample]:
    """``n`` context + question -> answer pairs from the indexed questions.

    Half of them have one word of the answer replaced by a random string of its length, in the context and the
    response alike, so that the model learns to *copy the context* rather than to recall the
    sixteen answers -- which is what lets it follow an updated FAQ without retraining.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    rng = random.Random(seed)
    base = questions("index", faq)
    out = []
    for _ in range(n):
        q = rng.choice(base)
        answer = q.answer
        if rng.random() < 0.5:
            tokens = answer.rstrip(".").split(" ")
            i = rng.randrange(len(tokens))
            alphabet = "0123456789" if tokens[i].isdigit() else "abcdefghijklmnopqrstuvwxyz"
            tokens[i] = "".join(rng.choice(alphabet) for _ in tokens[i])  # same length: it still fits
            answer = " ".join(tokens) + "."
        out.append(ChatExample(open_book_prompt(answer, q.text), answer))
    return out


def accuracy(answers: list[str], questions_: list[Question]) -> float:
    """The share of answers equal to the expected answer (exact match)."""
    if len(answers) != len(questions_):
        raise ValueError(f"answers must have one entry per question: got {len(answers)} for {len(questions_)}")
    if not answers:
        raise ValueError("answers must not be empty")
    return sum(a.strip() == q.answer for a, q in zip(answers, questions_, strict=True)) / len(answers)
