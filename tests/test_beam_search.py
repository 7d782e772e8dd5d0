"""Beam search (aigc_course.decoding.beam_search) against greedy decoding and an exhaustive search."""

import itertools

import pytest
import torch

from aigc_course import decoding
from aigc_course.gpt import GPT, GPTConfig
from aigc_course.seq2seq import EncoderDecoderTransformer


def tiny_gpt(seed: int, vocab: int = 3) -> GPT:
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=vocab, block_size=8, n_layer=1, n_head=1, n_embd=8)).eval()
    with torch.no_grad():  # sharper distributions than the 0.02-std init, so greedy and best differ
        model.transformer.wte.weight.mul_(60)
    return model


def sequence_score(model: GPT, prompt: torch.Tensor, continuation: tuple[int, ...], stop: int | None) -> float:
    """Sum of log P of the continuation, up to and including the first stop token."""
    ids = torch.cat([prompt, torch.tensor(continuation)])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids[None])[0][0], dim=-1)
    total = 0.0
    for i, token in enumerate(continuation):
        total += logp[len(prompt) - 1 + i, token].item()
        if token == stop:
            break
    return total


def exhaustive(model, prompt, n, vocab, stop):
    best = {}
    for cont in itertools.product(range(vocab), repeat=n):
        if stop is not None and stop in cont:  # everything after the stop token is the stop token
            first = cont.index(stop)
            cont = cont[: first + 1] + (stop,) * (n - first - 1)
        best[cont] = sequence_score(model, prompt, cont, stop)
    winner = max(best, key=best.get)
    return winner, best[winner]


@pytest.mark.parametrize("stop", [None, 2])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_enough_beams_find_the_most_probable_sequence(seed, stop):
    vocab, n = 3, 4
    model = tiny_gpt(seed, vocab)
    prompts = torch.tensor([[0], [1]])
    out = decoding.beam_search(model, prompts, n, num_beams=vocab ** (n - 1), stop_token=stop)
    for row, prompt in enumerate(prompts):
        winner, score = exhaustive(model, prompt, n, vocab, stop)
        got = tuple(out.sequences[row, 1:].tolist())
        got = got + (stop,) * (n - len(got))  # every row stopped early: the loop ended
        assert got == winner
        assert out.scores[row].item() == pytest.approx(score, abs=1e-4)


class TwoStepTable:
    """A decoder whose next-token distribution depends on the previous token only (a bigram table)."""

    def __init__(self, table):
        self.log_table = torch.tensor(table).log()

    def decoding_state(self, batch_size, use_cache=True):
        return None

    def decode_step(self, tokens, state):
        return self.log_table[tokens[:, -1]], state

    def reorder_state(self, state, index):
        return state


def test_one_beam_is_greedy_and_two_beams_see_past_a_likely_first_word():
    for seed in range(4):
        model = tiny_gpt(seed, vocab=4)
        prompt = torch.tensor([[0], [3]])
        assert torch.equal(decoding.beam_search(model, prompt, 5, num_beams=1).sequences,
                           decoding.generate(model, prompt, 5))
    # from token 0: "1" (0.6) then anything (1/3 each), or "2" (0.4) then "3" (0.97)
    table = [[0.0, 0.6, 0.4, 0.0], [0.0, 1 / 3, 1 / 3, 1 / 3], [0.01, 0.01, 0.01, 0.97], [0.25] * 4]
    model = TwoStepTable(table)
    prompt = torch.tensor([[0]])
    assert decoding.generate(model, prompt, 2)[0, 1].item() == 1
    best = decoding.beam_search(model, prompt, 2, num_beams=2)
    assert best.sequences.tolist() == [[0, 2, 3]]
    assert best.scores.item() == pytest.approx(float(torch.tensor(0.4 * 0.97).log()), abs=1e-5)


def test_beam_search_follows_the_encoder_decoder_state():
    torch.manual_seed(0)
    model = EncoderDecoderTransformer(vocab_size=6, block_size=6, n_embd=16, n_head=2).eval()
    source = torch.randint(0, 6, (3, 4))
    mask = torch.tensor([[True] * 4, [True, True, True, False], [True, False, False, False]])
    start = torch.zeros(3, 1, dtype=torch.long)
    beams = model.generate(source, start, 5, source_mask=mask, num_beams=6, stop_token=1)
    # each row alone (no padding, no other rows) gives the same answer
    for row in range(3):
        real = mask[row]
        alone = model.generate(source[row : row + 1, real], start[:1], 5, num_beams=6, stop_token=1)
        assert torch.equal(alone[0], beams[row, : alone.shape[1]])


def test_bad_arguments_name_themselves():
    model = tiny_gpt(0)
    prompt = torch.tensor([[0]])
    with pytest.raises(ValueError, match="num_beams"):
        decoding.beam_search(model, prompt, 3, num_beams=0)
    with pytest.raises(ValueError, match="num_beams"):
        decoding.beam_search(model, prompt, 3, num_beams=True)
    with pytest.raises(ValueError, match="max_new_tokens"):
        decoding.beam_search(model, prompt, -1, num_beams=2)
    with pytest.raises(ValueError, match="prompt"):
        decoding.beam_search(model, torch.zeros(1, 1), 3, num_beams=2)
    with pytest.raises(ValueError, match="stop_token"):
        decoding.beam_search(model, prompt, 3, num_beams=2, stop_token=-1)

    class NoReorder:
        def decoding_state(self, batch_size, use_cache=True):
            return None

        def decode_step(self, tokens, state):
            return torch.zeros(len(tokens), 3), state

    with pytest.raises(ValueError, match="reorder_state"):
        decoding.beam_search(NoReorder(), prompt, 3, num_beams=2)


def test_nan_logits_raise():
    model = tiny_gpt(0)
    with torch.no_grad():
        model.lm_head.weight[0, 0] = float("nan")
    with pytest.raises(decoding.NonFiniteLogitsError):
        decoding.beam_search(model, torch.tensor([[0]]), 3, num_beams=2)
