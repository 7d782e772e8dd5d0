"""Chapter 3.1.4: instruction data, masks, losses against hand computations, checkpoints."""

from __future__ import annotations

import math
import random
import re
from collections import Counter

import pytest
import torch

from aigc_course.alignment import (
    END,
    TASK_NAMES,
    TASKS,
    RewardModel,
    bradley_terry_loss,
    chat_tokenizer,
    dpo_loss,
    encode_examples,
    encode_pairs,
    evaluate,
    format_chat,
    format_prompt,
    generate,
    is_correct,
    is_preferred,
    kl_penalised_reward,
    make_examples,
    parse_response,
    preference_pairs,
    preference_score,
    pretraining_text,
    response_only_loss,
    sequence_logprobs,
    sft,
    solve,
)
from aigc_course.alignment.reward import encode_full
from aigc_course.alignment.tasks import corrupt_answer, instance_split, number_to_words
from aigc_course.gpt import GPT, GPTConfig

TOK = chat_tokenizer()


def tiny_gpt(block: int = 96) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=TOK.vocab_size, block_size=block, n_layer=1, n_head=2, n_embd=16)).eval()


# ----------------------------------------------------------------------------- data


def test_at_least_six_task_families_with_held_out_phrasings():
    assert len(TASK_NAMES) >= 6
    for task in TASKS.values():
        assert task.n_train_phrasings < len(task.phrasings), task.name
        assert len(set(task.phrasings)) == len(task.phrasings)


@pytest.mark.parametrize("task", TASK_NAMES)
@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("phrasings", ["train", "held_out"])
def test_every_generated_example_is_solvable_by_the_evaluator(task, split, phrasings):
    examples = make_examples(200, tasks=task, split=split, phrasings=phrasings, rambling_fraction=0.5, seed=3)
    for ex in examples:
        assert ex.answer == solve(ex.task, dict(ex.args))
        assert instance_split(ex.task, dict(ex.args)) == split
        assert is_correct(ex, ex.response)
        assert is_preferred(ex, ex.response) == (ex.style == "concise")
        assert parse_response(ex.response) == (ex.answer, ex.style)
        wrong = corrupt_answer(ex, random.Random(0))
        assert not is_correct(ex, wrong)
    # the phrasing used is the one asked for
    k = TASKS[task].n_train_phrasings
    assert all((e.phrasing < k) == (phrasings == "train") for e in examples)
    # every example fits the chapter's 96-token context
    encode_examples(examples, TOK, 96)


def test_train_and_test_instances_do_not_overlap():
    train = {(e.task, e.args) for e in make_examples(3000, seed=1)}
    test = {(e.task, e.args) for e in make_examples(1000, split="test", seed=2)}
    assert train and test and not train & test


@pytest.mark.parametrize("task", ["reverse", "uppercase", "count_letter", "lowercase"])
def test_word_instances_are_random_strings_that_rarely_repeat(task):
    examples = make_examples(2000, tasks=task, seed=6)
    words = [w for e in examples for k, v in e.args if k in ("word", "phrase") for w in v.split()]
    assert all(3 <= len(w) <= 7 and w.isalpha() for w in words)
    assert len({e.args for e in examples}) > 0.99 * len(examples)  # nothing to memorise


def test_letter_counts_are_uniform_so_guessing_the_common_count_fails():
    counts = Counter(e.answer for e in make_examples(4000, tasks="count_letter", seed=7))
    assert set(counts) == {"0", "1", "2", "3"}
    assert max(counts.values()) < 0.3 * sum(counts.values())


def test_every_word_of_a_test_spelling_occurs_in_train_spellings():
    split = {n: instance_split("spell_number", {"n": n}) for n in range(1, 1000)}
    train_words = {w for n, s in split.items() if s == "train" for w in re.split("[ -]", number_to_words(n))}
    test = [n for n, s in split.items() if s == "test"]
    assert 150 < len(test) < 250
    assert all(set(re.split("[ -]", number_to_words(n))) <= train_words for n in test)


def test_solutions_by_hand():
    assert solve("reverse", {"word": "cat"}) == "tac"
    assert solve("sort_digits", {"digits": "3912"}) == "1239"
    assert solve("add", {"a": 17, "b": 25}) == "42"
    assert solve("uppercase", {"phrase": "red fox"}) == "RED FOX"
    assert solve("count_letter", {"letter": "a", "word": "banana"}) == "3"
    assert solve("spell_number", {"n": 42}) == "forty-two"
    assert solve("lowercase", {"phrase": "RED FOX"}) == "red fox"
    assert [number_to_words(n) for n in (0, 13, 20, 99)] == ["zero", "thirteen", "twenty", "ninety-nine"]
    assert [number_to_words(n) for n in (100, 115, 340, 999)] == [
        "one hundred", "one hundred fifteen", "three hundred forty", "nine hundred ninety-nine"]


def test_evaluator_exact_match_and_preference_score():
    ex = make_examples(1, tasks="add", seed=0)[0]
    a = ex.answer
    assert evaluate([ex], [a])["accuracy"] == 1.0
    assert evaluate([ex], [f"Sure! The answer is {a}."]) == {
        "accuracy": 1.0, "preferred_rate": 0.0, "per_task": {"add": 1.0}}
    assert evaluate([ex], [a + "0"])["accuracy"] == 0.0
    assert [preference_score(ex, r) for r in (a, f"Sure! The answer is {a}.", "x", "Sure! The answer is x.")] == [
        3, 2, 1, 0]  # concise-wrong (1) still beats rambling-wrong (0)


def test_preference_pairs_follow_the_stated_preference():
    examples = make_examples(300, seed=4)
    for ex, chosen, rejected in preference_pairs(examples, seed=5):
        assert preference_score(ex, chosen) > preference_score(ex, rejected)


def test_pretraining_text_is_not_chat_formatted():
    text = pretraining_text(200, tasks=TASK_NAMES)
    TOK.encode(text)  # inside the vocabulary
    assert not any(c in text for c in (END, "\x01", "\x02"))
    assert "backwards is" in text or "reverse give" in text


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: make_examples(0), "empty data set"),
        (lambda: make_examples(10, tasks="translate"), "unknown task"),
        (lambda: make_examples(10, tasks=[]), "at least one task"),
        (lambda: make_examples(10, split="valid"), "split"),
        (lambda: encode_pairs([], [], TOK, 96), "empty"),
        (lambda: encode_pairs(["add 1 and 2"], ["3" * 200], TOK, 96), "longer than the context"),
        (lambda: sft(tiny_gpt(), [], TOK, 1, progress=False), "empty"),
        (lambda: preference_pairs([]), "empty"),
        (lambda: dpo_loss(*[torch.zeros(2)] * 4, beta=0.0), "beta"),
        (lambda: bradley_terry_loss(torch.zeros(2), torch.zeros(3)), "must match"),
    ],
)
def test_bad_input_raises_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ----------------------------------------------------------------------------- masks and losses


def test_response_only_mask_covers_exactly_the_response_and_end():
    ids, targets, mask = encode_pairs(["add 1 and 2", "hi"], ["3", "Sure! The answer is 3."], TOK, 96)
    for b, (prompt, response) in enumerate([("add 1 and 2", "3"), ("hi", "Sure! The answer is 3.")]):
        full = TOK.encode(format_chat(prompt, response))
        n_prompt = len(full) - len(response) - 1
        assert ids[b, : len(full) - 1].tolist() == full[:-1]
        # targets are the next tokens, kept only where the next token is a response token or <|end|>
        kept = [(t, int(targets[b, t])) for t in range(ids.shape[1]) if targets[b, t] != -1]
        assert kept == [(t, full[t + 1]) for t in range(n_prompt - 1, len(full) - 1)]
        assert TOK.decode([v for _, v in kept]) == response + END
        assert mask[b].sum() == len(response) + 1


def test_response_only_loss_matches_a_hand_computation():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5)
    targets = torch.tensor([[-1, 2, 4, -1], [-1, -1, 0, -1]])
    expected = -(torch.log_softmax(logits[0, 1], -1)[2] + torch.log_softmax(logits[0, 2], -1)[4]
                 + torch.log_softmax(logits[1, 2], -1)[0]) / 3
    assert torch.allclose(response_only_loss(logits, targets), expected)
    # the prompt tokens do not matter at all
    changed = logits.clone()
    changed[:, 0] += 100
    assert torch.allclose(response_only_loss(changed, targets), expected)
    with pytest.raises(ValueError, match="no response token"):
        response_only_loss(logits, torch.full((2, 4), -1))


def test_sequence_logprobs_sum_the_response_tokens():
    model = tiny_gpt()
    ids, targets, _ = encode_pairs(["add 1 and 2"], ["3"], TOK, 96)
    logp = torch.log_softmax(model(ids)[0], -1)[0]
    n = int((targets[0] != -1).nonzero()[0])
    expected = logp[n, targets[0, n]] + logp[n + 1, targets[0, n + 1]]  # "3" then <|end|>
    assert torch.allclose(sequence_logprobs(model, ids, targets), expected.reshape(1), atol=1e-6)


def test_bradley_terry_loss_by_hand():
    rc, rr = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])
    expected = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(1.0))) / 2
    assert bradley_terry_loss(rc, rr).item() == pytest.approx(expected, rel=1e-6)
    assert bradley_terry_loss(torch.zeros(3), torch.zeros(3)).item() == pytest.approx(math.log(2))


def test_dpo_loss_by_hand():
    pc, pr = torch.tensor([-1.0, -2.0]), torch.tensor([-3.0, -1.0])
    rc, rr = torch.tensor([-2.0, -2.0]), torch.tensor([-2.0, -2.0])
    beta = 0.5
    # implicit rewards: beta * (pi - ref): chosen [0.5, 0], rejected [-0.5, 0.5]
    margins = [0.5 - (-0.5), 0.0 - 0.5]
    expected = sum(math.log(1 + math.exp(-m)) for m in margins) / 2
    loss, chosen, rejected = dpo_loss(pc, pr, rc, rr, beta)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert chosen.tolist() == [0.5, 0.0] and rejected.tolist() == [-0.5, 0.5]
    # policy == reference gives log 2 whatever beta is
    assert dpo_loss(pc, pr, pc, pr, 3.0)[0].item() == pytest.approx(math.log(2))


def test_kl_penalty_by_hand():
    reward = torch.tensor([1.0, 2.0])
    lp, lr = torch.tensor([-1.0, -4.0]), torch.tensor([-2.0, -3.0])
    out = kl_penalised_reward(reward, lp, lr, beta=0.5)
    assert out.tolist() == [1.0 - 0.5 * 1.0, 2.0 - 0.5 * (-1.0)]
    assert torch.equal(kl_penalised_reward(reward, lp, lr, beta=0.0), reward)
    with pytest.raises(ValueError, match="beta"):
        kl_penalised_reward(reward, lp, lr, beta=-1.0)


@pytest.mark.parametrize("pool", ["last", "mean", "logprob"])
def test_reward_model_ignores_padding_and_learns_a_preference(pool):
    torch.manual_seed(0)
    rm = RewardModel(GPTConfig(vocab_size=TOK.vocab_size, block_size=96, n_layer=1, n_head=2, n_embd=16), pool)
    # padding after a sequence does not change its score (causal model, real tokens only)
    short = rm.score(["add 1 and 2"], ["3"], TOK)
    mixed = rm.score(["add 1 and 2", "add 1 and 2"], ["3", "Sure! The answer is 3."], TOK)
    assert torch.allclose(short, mixed[:1], atol=1e-6)
    opt = torch.optim.Adam(rm.parameters(), lr=1e-2)
    for _ in range(30):
        r = rm.score(["add 1 and 2"] * 2, ["3", "Sure! The answer is 3."], TOK)
        loss = bradley_terry_loss(r[:1], r[1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    r = rm.score(["add 1 and 2"] * 2, ["3", "Sure! The answer is 3."], TOK)
    assert r[0] > r[1]


def test_mean_pooled_reward_averages_the_head_over_the_response_and_end():
    torch.manual_seed(0)
    rm = RewardModel(GPTConfig(vocab_size=TOK.vocab_size, block_size=96, n_layer=1, n_head=2, n_embd=16), "mean")
    torch.nn.init.normal_(rm.head.weight)
    ids, lengths, starts = encode_full(["add 1 and 2"], ["13"], TOK, 96)
    assert starts.tolist() == [len(TOK.encode(format_prompt("add 1 and 2")))]
    assert lengths.tolist() == [starts.item() + 3]  # "1", "3", <|end|>
    per_token = rm.head(rm.backbone._body(ids)).squeeze(-1)[0]
    torch.testing.assert_close(rm.score(["add 1 and 2"], ["13"], TOK)[0], per_token[starts.item():].mean())
    with pytest.raises(ValueError, match="starts"):
        rm(ids, lengths)
    with pytest.raises(ValueError, match="pool"):
        RewardModel(rm.config, "max")


def test_logprob_pooled_reward_starts_as_the_backbones_mean_token_logprob():
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=TOK.vocab_size, block_size=96, n_layer=1, n_head=2, n_embd=16))
    rm = RewardModel.from_gpt(gpt, "logprob")  # zero head, log-probability weight 1
    prompts, responses = ["add 1 and 2", "hi"], ["13", "Sure! The answer is 3."]
    ids, targets, mask = encode_pairs(prompts, responses, TOK, 96)
    expected = sequence_logprobs(gpt, ids, targets) / mask.sum(1)  # response tokens and <|end|>
    torch.testing.assert_close(rm.score(prompts, responses, TOK), expected)


def test_generate_stops_at_end_and_handles_mixed_prompt_lengths():
    model = tiny_gpt()
    prompts = ["add 1 and 2", "reverse the word cat", "hi"]
    batch = generate(model, prompts, TOK, max_new_tokens=10)
    alone = [generate(model, [p], TOK, max_new_tokens=10)[0] for p in prompts]
    assert batch == alone
    assert all(END not in r and len(r) <= 10 for r in batch)
    # the model continues exactly as its own greedy decoding does
    ids = torch.tensor([TOK.encode(format_chat("hi", "")[:-1])])
    ref = TOK.decode(model.generate(ids, 10, temperature=0.0)[0, ids.shape[1]:].tolist()).split(END)[0]
    assert batch[2] == ref


# ----------------------------------------------------------------------------- shipped checkpoints


@pytest.mark.parametrize("name", ["tiny-chat-base", "tiny-chat-sft", "tiny-chat-reward", "tiny-chat-dpo",
                                  "tiny-chat-reward-weak"])
def test_shipped_checkpoints_load_and_record_their_run(name):
    from aigc_course import pretrained
    from aigc_course.alignment import ChatPipeline

    obj = pretrained.load(name, device="cpu")
    config = pretrained.load_files(name)[1]
    assert {"model", "tokenizer", "data", "training", "metrics"} <= set(config)
    assert config["tokenizer"]["chars"] == TOK.chars
    assert pretrained.info(name)["bytes"] < 5e6
    if name.startswith("tiny-chat-reward"):
        assert isinstance(obj, RewardModel) and not obj.training
        r = obj.score(["add 1 and 2"] * 2, ["3", "4"], TOK)
        assert r.shape == (2,) and torch.isfinite(r).all()
    else:
        assert isinstance(obj, ChatPipeline) and not obj.model.training
        assert isinstance(obj("add 1 and 2"), str)
