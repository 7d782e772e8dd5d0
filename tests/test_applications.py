"""Chapter 6's applications: the FAQ's held-out questions are new, its prompts fit the chat
model's window, and the practice-problem checker accepts right items, rejects wrong and
malformed ones, and agrees with the task solver on the data the base model was trained on."""

from __future__ import annotations

import pytest
import torch

from aigc_course.alignment.chat import ALPHABET, chat_tokenizer, encode_pairs
from aigc_course.alignment.tasks import TASK_NAMES, pretraining_text
from aigc_course.applications import practice, support
from aigc_course.gpt import GPT, GPTConfig


def test_held_out_questions_are_never_in_the_index():
    index, held = support.questions("index"), support.questions("held_out")
    assert len(index) == len(held) == 3 * len(support.INTENTS)
    assert not {q.text for q in index} & {q.text for q in held}
    assert {q.intent for q in held} == set(support.INTENTS)


def test_every_faq_text_fits_the_chat_model():
    allowed = set(ALPHABET)
    examples = support.closed_book_examples() + support.open_book_examples(300, seed=1)
    for e in examples:
        assert set(e.prompt) <= allowed and set(e.response) <= allowed, e
    # encode_pairs raises if any prompt + response is longer than the 96-token window
    encode_pairs([e.prompt for e in examples], [e.response for e in examples], chat_tokenizer(), 96)


def test_open_book_examples_answer_from_their_context():
    examples = support.open_book_examples(200, seed=0)
    assert all(e.prompt.split("\n")[0] == e.response for e in examples)
    answers = {q.answer for q in support.questions("index")}
    changed = sum(e.response not in answers for e in examples)
    assert 60 < changed < 140  # about half carry a replaced word


def test_updated_faq_and_accuracy():
    new = support.updated_faq({"price": "It costs 99 euros."})
    held = support.questions("held_out", new)
    assert {q.answer for q in held if q.intent == "price"} == {"It costs 99 euros."}
    assert support.accuracy([q.answer for q in held], held) == 1.0
    assert support.accuracy(["?"] * len(held), held) == 0.0
    with pytest.raises(ValueError, match="unknown intent"):
        support.updated_faq({"colour": "Blue."})
    with pytest.raises(ValueError, match="split"):
        support.questions("test")
    with pytest.raises(ValueError, match="one entry per question"):
        support.accuracy(["a"], held)


def test_checker_accepts_the_training_prose():
    text = pretraining_text(600, tasks=TASK_NAMES, seed=5)
    items = [practice.check_item(s) for s in practice.split_sentences(text)]
    assert len(items) == 600 and all(i.status == "correct" for i in items)
    assert {i.task for i in items} == set(TASK_NAMES)


@pytest.mark.parametrize(("sentence", "status", "answer"), [
    ("12 plus 5 is 17.", "correct", "17"),
    ("12 plus 5 is 18.", "wrong", "17"),
    ("123 plus 5 is 128.", "invalid", None),  # a is 0-99 in the task family
    ("the digits 9305 in order are 0359.", "correct", "0359"),
    ("qorvit backwards is tivroq.", "correct", "tivroq"),
    ("qorvit backwards is tivroqq.", "wrong", "tivroq"),
    ("whispered, ABC DEFG becomes abc defg.", "correct", "abc defg"),
    ("whispered, abc becomes abc.", "invalid", None),  # lowercasing needs a phrase in capitals
    ("315 is written three hundred fifteen.", "correct", "three hundred fifteen"),
    ("there are 2 a in banana.", "wrong", "3"),
    ("12 plus 5 is 17", "invalid", None),  # unfinished
    ("the kettle is hot.", "invalid", None),
])
def test_check_item(sentence, status, answer):
    item = practice.check_item(sentence)
    assert (item.status, item.answer) == (status, answer)


def test_items_become_questions_and_the_filter_keeps_distinct_correct_ones():
    kept, rejected = practice.generate_then_verify(
        ["12 plus 5 is 17.", "12 and 5 make 17.", "3 plus 4 is 8.", "oops.", "3 plus 4 is 7."])
    assert [i.question() for i in kept] == ["add 12 and 5", "add 3 and 4"]
    assert [i.status for i in rejected] == ["correct", "wrong", "invalid"]  # a repeat, then the errors
    with pytest.raises(ValueError, match="no question"):
        rejected[2].question()
    summary = practice.summarise([practice.check_item(s) for s in ["1 plus 1 is 2.", "1 plus 1 is 3.", "x."]])
    assert summary["correct_share"] == pytest.approx(1 / 3) and summary["valid_share"] == pytest.approx(2 / 3)


def test_split_sentences_drops_the_unfinished_tail():
    assert practice.split_sentences("a b. c d.\ne f. g h") == ["a b.", "c d.", "e f."]


def test_propose_samples_sentences_repeatably():
    tok = chat_tokenizer()
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=16))
    a = practice.propose(model, tok, 3, length=20, generator=torch.Generator().manual_seed(1))
    b = practice.propose(model, tok, 3, length=20, generator=torch.Generator().manual_seed(1))
    assert a == b and all(s.endswith(".") for s in a)
    with pytest.raises(ValueError, match="length"):
        practice.propose(model, tok, 1, length=32)
    with pytest.raises(ValueError, match="n_streams"):
        practice.propose(model, tok, 0)
