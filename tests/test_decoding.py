"""The one decoding loop (aigc_course.decoding): same tokens as before, samplers, constraints,
stopping, broken logits, the model interface (GPT, CharLSTM), and token-id validation."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from aigc_course import decoding, pretrained
from aigc_course.alignment import END, chat_tokenizer
from aigc_course.alignment import generate as chat_generate
from aigc_course.attention import KVCache, MultiHeadAttention, record_attention
from aigc_course.autoregressive import DiscreteAutoregressive
from aigc_course.data import decode_chars
from aigc_course.decoding import NonFiniteLogitsError, allow_only, limit_vocabulary
from aigc_course.gpt import GPT, GPTConfig, sequence_bits
from aigc_course.rnn import CharLSTM, CharLSTMConfig
from aigc_course.sampling import Greedy, InverseCDF, Multinomial, greedy, make_sampler, sample
from aigc_course.tokenizers import ByteBPETokenizer, CharTokenizer, as_token_ids
from tests import decoding_cases

# ----------------------------------------------------------------------------- same tokens as before

SHIPPED = {"code_gpt": ["code-gpt"], "char_lstm": ["char-lstm"], "chat": ["tiny-chat-sft", "tiny-chat-base"],
           "pixel_and_point_gpt": ["digits-pixel-gpt"]}


@pytest.mark.parametrize("case", sorted(decoding_cases.CASES))
def test_every_model_decodes_the_recorded_tokens(case):
    """Tokens recorded from the four decoding loops the course had before this one (CPU)."""
    missing = [name for name in SHIPPED.get(case, []) if name not in pretrained.available()]
    if missing:
        pytest.skip(f"checkpoints not shipped: {missing}")
    golden = json.loads(decoding_cases.GOLDEN.read_text())[case]
    got = json.loads(json.dumps(decoding_cases.CASES[case]()))  # tuples -> lists, as recorded
    assert got.keys() == golden.keys()
    for key in golden:
        assert got[key] == golden[key], f"{case}/{key} decodes differently from the recorded tokens"


def tiny_gpt(block_size=32, vocab_size=50, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=2, n_head=2, n_embd=16)).eval()


# ----------------------------------------------------------------------------- samplers


def test_make_sampler_picks_greedy_at_zero_and_checks_every_setting():
    assert make_sampler(0.0) == Greedy() and make_sampler(0, top_k=3) == Greedy()
    assert make_sampler(0.7, top_k=5, top_p=0.9) == Multinomial(0.7, 5, 0.9)
    for bad in (dict(temperature=-1.0), dict(temperature=float("inf")), dict(temperature=float("nan")),
                dict(temperature=True), dict(temperature="1")):
        with pytest.raises(ValueError, match="temperature"):
            make_sampler(**bad)
    with pytest.raises(ValueError, match="k must be"):
        make_sampler(0.0, top_k=0)  # checked even where greedy ignores it
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        make_sampler(0.0, top_p=1.5)
    with pytest.raises(ValueError, match="temperature"):
        Multinomial(0.0)
    with pytest.raises(ValueError, match="temperature"):
        InverseCDF(-0.5)


def test_multinomial_sampler_is_the_sample_function():
    logits = torch.randn(5, 40, generator=torch.Generator().manual_seed(0))
    for kw in (dict(), dict(top_k=4), dict(temperature=0.6, top_p=0.8)):
        for seed in range(5):
            a = sample(logits, generator=torch.Generator().manual_seed(seed), **kw)
            b = make_sampler(**kw)(logits, torch.Generator().manual_seed(seed))
            assert torch.equal(a, b)


def test_inverse_cdf_follows_the_distribution_and_is_seeded():
    probs = torch.tensor([0.5, 0.25, 0.25])
    draws = InverseCDF()(torch.log(probs).expand(20000, 3), torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=3).float() / 20000
    assert torch.allclose(freq, probs, atol=0.015)
    logits = torch.randn(8, 6, generator=torch.Generator().manual_seed(1))
    a = InverseCDF(0.7)(logits, torch.Generator().manual_seed(3))
    assert torch.equal(a, InverseCDF(0.7)(logits, torch.Generator().manual_seed(3)))
    assert a.device.type == "cpu"


# ----------------------------------------------------------------------------- the loop and its interface


class Counter:
    """The smallest Decoder: the next token is ``(last + step) % V``, with no network at all."""

    def __init__(self, vocab=10, step=1):
        self.vocab, self.step = vocab, step

    def decoding_state(self, batch_size, use_cache=True):
        return {"calls": 0}

    def decode_step(self, tokens, state):
        state["calls"] += 1
        nxt = (tokens[:, -1] + self.step) % self.vocab
        return torch.nn.functional.one_hot(nxt, self.vocab).float() * 10, state


def test_any_decoder_plugs_into_the_loop():
    model = Counter()
    state = model.decoding_state(2)
    out = decoding.generate(model, torch.tensor([[3], [8]]), 5, state=state)
    assert out.tolist() == [[3, 4, 5, 6, 7, 8], [8, 9, 0, 1, 2, 3]]
    assert state["calls"] == 5  # the prompt once, then one call per new token but the last
    assert decoding.generate(model, torch.tensor([[3]]), 0).tolist() == [[3]]


def test_stream_yields_one_token_per_row_per_step_and_generate_collects_them():
    model = tiny_gpt()
    idx = torch.randint(0, 50, (3, 5), generator=torch.Generator().manual_seed(0))
    steps = list(decoding.stream(model, idx, 7, Multinomial(0.9), generator=torch.Generator().manual_seed(1)))
    assert len(steps) == 7 and all(s.shape == (3,) for s in steps)
    out = decoding.generate(model, idx, 7, Multinomial(0.9), generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, torch.cat([idx, torch.stack(steps, 1)], 1))
    assert torch.equal(out, model.generate(idx, 7, temperature=0.9, generator=torch.Generator().manual_seed(1)))


def test_stop_token_finishes_rows_and_ends_the_generation_early():
    model = Counter(vocab=10)
    out = decoding.generate(model, torch.tensor([[6], [1]]), 20, stop_token=8)
    # row 0 reaches 8 after 2 steps and keeps emitting it; row 1 after 7: the loop ends there
    assert out.tolist() == [[6, 7, 8, 8, 8, 8, 8, 8], [1, 2, 3, 4, 5, 6, 7, 8]]
    assert decoding.generate(model, torch.tensor([[1]]), 3, stop_token=8).tolist() == [[1, 2, 3, 4]]


def test_constraints_see_the_tokens_and_restrict_the_choice():
    model = Counter(vocab=10)
    out = decoding.generate(model, torch.tensor([[0]]), 6, constraints=[allow_only([2, 5, 7])])
    assert set(out[0, 1:].tolist()) <= {2, 5, 7}
    seen = []
    decoding.generate(model, torch.tensor([[0, 1]]), 3, constraints=[lambda z, t: seen.append(t.shape) or z])
    assert seen == [(1, 2), (1, 3), (1, 4)]
    logits = torch.randn(2, 6)
    assert torch.equal(limit_vocabulary(4)(logits, None), logits[:, :4])
    with pytest.raises(ValueError, match="token_ids"):
        allow_only([])
    with pytest.raises(ValueError, match="beyond"):
        decoding.generate(model, torch.tensor([[0]]), 2, constraints=[allow_only([12])])


def test_loop_evaluates_without_gradients_and_restores_training_mode():
    model = tiny_gpt()
    model.transformer.drop.p = 0.5  # dropout would make greedy decoding random in training mode
    model.train()
    idx = torch.randint(0, 50, (2, 4), generator=torch.Generator().manual_seed(0))
    seen = []

    def spy(logits, tokens):
        seen.append((model.training, torch.is_grad_enabled()))
        return logits

    a = decoding.generate(model, idx, 6, constraints=[spy])
    assert model.training and torch.is_grad_enabled()
    assert set(seen) == {(False, False)}
    assert torch.equal(a, decoding.generate(model, idx, 6))


def test_loop_checks_its_arguments():
    model = Counter()
    cases = [
        (dict(prompt=torch.tensor([[1.0]])), "prompt must hold integer token ids"),
        (dict(prompt=torch.tensor([1, 2])), r"prompt must have shape \(B, T\)"),
        (dict(prompt=torch.zeros(1, 0, dtype=torch.long)), r"prompt must have shape \(B, T\)"),
        (dict(max_new_tokens=-1), "max_new_tokens"),
        (dict(max_new_tokens=2.0), "max_new_tokens"),
        (dict(sampler="greedy"), "sampler"),
        (dict(constraints=[3]), "constraints"),
        (dict(stop_token=-2), "stop_token"),
    ]
    for change, message in cases:
        kw = dict(prompt=torch.tensor([[1]]), max_new_tokens=2) | change
        with pytest.raises(ValueError, match=message):
            decoding.generate(model, **kw)
    with pytest.raises(ValueError, match="decoding_state and decode_step"):
        decoding.generate(torch.nn.Linear(2, 2), torch.tensor([[1]]), 2)


# ----------------------------------------------------------------------------- broken logits


class BrokenRow(Counter):
    """Row ``row`` of the logits becomes ``value`` from call ``at`` on."""

    def __init__(self, value=float("nan"), row=1, at=3):
        super().__init__()
        self.value, self.row, self.at = value, row, at

    def decode_step(self, tokens, state):
        logits, state = super().decode_step(tokens, state)
        if state["calls"] >= self.at:
            logits[self.row] = self.value
        return logits, state


@pytest.mark.parametrize("sampler", [Greedy(), Multinomial(1.0), InverseCDF(1.0)])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_broken_logits_raise_instead_of_decoding_a_token(sampler, value):
    with pytest.raises(NonFiniteLogitsError, match=r"rows \[1\]"):
        decoding.generate(BrokenRow(value), torch.tensor([[0], [4], [2]]), 6, sampler)
    assert issubclass(NonFiniteLogitsError, ValueError) and issubclass(NonFiniteLogitsError, FloatingPointError)


def test_nan_weights_make_gpt_generate_raise_and_single_calls_refuse_nan():
    model = tiny_gpt()
    with torch.no_grad():
        model.lm_head.weight[3, 0] = float("nan")  # tied: token 3's embedding and its logit
    idx = torch.tensor([[1, 2]])
    for kw in (dict(temperature=0.0), dict(temperature=1.0, top_p=0.9)):
        with pytest.raises(NonFiniteLogitsError):
            model.generate(idx, 4, generator=torch.Generator().manual_seed(0), **kw)
    logits = torch.tensor([[0.0, float("nan"), 1.0]])
    with pytest.raises(ValueError, match="NaN"):
        greedy(logits)
    with pytest.raises(ValueError, match="NaN"):
        sample(logits, generator=torch.Generator().manual_seed(0))


# ----------------------------------------------------------------------------- model states


def test_gpt_state_reorder_follows_beams():
    model = tiny_gpt()
    idx = torch.randint(0, 50, (2, 5), generator=torch.Generator().manual_seed(0))
    for use_cache in (True, False):
        state = model.decoding_state(2, use_cache)
        model.decode_step(idx, state)
        order = torch.tensor([1, 1, 0])
        state = model.reorder_state(state, order)
        nxt = torch.tensor([[7], [9], [7]])
        logits, _ = model.decode_step(nxt, state)
        with torch.no_grad():
            ref = model(torch.cat([idx[order], nxt], 1))[0][:, -1]
        torch.testing.assert_close(logits, ref, atol=1e-5, rtol=1e-5)


def test_lstm_state_reorder_and_greedy_generation():
    torch.manual_seed(0)
    lstm = CharLSTM(CharLSTMConfig(embed_dim=8, hidden_size=16)).eval()
    idx = torch.randint(0, 96, (2, 6), generator=torch.Generator().manual_seed(0))
    state = lstm.decoding_state(2)
    _, state = lstm.decode_step(idx, state)
    state = lstm.reorder_state(state, torch.tensor([1, 0, 1]))
    logits, _ = lstm.decode_step(torch.tensor([[5], [6], [7]]), state)
    with torch.no_grad():
        ref = lstm(torch.cat([idx[[1, 0, 1]], torch.tensor([[5], [6], [7]])], 1))[0][:, -1]
    torch.testing.assert_close(logits, ref, atol=1e-5, rtol=1e-5)
    text = lstm.generate("def ", 12, temperature=0.0)
    assert text == lstm.generate("def ", 12, temperature=0.0) and len(text) == 16


def test_kv_cache_reorder_keeps_rows():
    cache = KVCache(3, 2, 8, 4)
    k = torch.arange(3.0)[:, None, None, None].expand(3, 2, 2, 4)
    cache.append(k, k + 10)
    cache.reorder(torch.tensor([2, 0]))
    keys, values = cache.append(torch.zeros(2, 2, 1, 4), torch.zeros(2, 2, 1, 4))
    assert keys.shape == (2, 2, 3, 4) and keys[:, 0, 0, 0].tolist() == [2.0, 0.0]
    assert values[:, 0, 0, 0].tolist() == [12.0, 10.0]


def test_pixel_gpt_never_samples_its_bos_token():
    model = DiscreteAutoregressive(length=6, vocab=3, n_layer=1, n_head=2, n_embd=8).eval()
    with torch.no_grad():  # BOS (id 3) gets a logit of about 8 * 10: by far the most likely token
        model.gpt.transformer.ln_f.bias.fill_(1.0)
        model.gpt.lm_head.weight[3] = 10.0
    bos = torch.full((50, 1), 3)
    free = decoding.generate(model.gpt, bos, 6, InverseCDF(), generator=torch.Generator().manual_seed(0))
    assert (free[:, 1:] == 3).float().mean() > 0.9  # without the constraint
    tokens = model.sample(50, torch.Generator().manual_seed(0))
    assert tokens.shape == (50, 6) and int(tokens.max()) < 3


# ----------------------------------------------------------------------------- attention weights: one return type


def test_record_attention_collects_every_layer_and_restores():
    model = tiny_gpt()
    idx = torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(0))
    with record_attention(model) as weights:
        logits = model(idx)[0]
    assert len(weights) == 2 and weights[0].shape == (2, 2, 9, 9)
    torch.testing.assert_close(logits, model(idx)[0])  # recording does not change the output
    torch.testing.assert_close(torch.stack(weights), model.attention_maps(idx))
    assert all(block.attn._weights_sink is None for block in model.transformer.h)
    with record_attention(model) as outer:
        with record_attention(model.transformer.h[1]) as inner:
            model(idx)
        model(idx)
    assert len(inner) == 1 and len(outer) == 3
    with pytest.raises(ValueError, match="no attention layer"):
        with record_attention(torch.nn.Linear(2, 2)):
            pass


def test_attention_modules_return_one_type_and_need_weights_is_deprecated():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2).eval()
    x = torch.randn(2, 5, 16)
    y = mha(x, is_causal=True)
    assert isinstance(y, torch.Tensor) and y.shape == (2, 5, 16)
    block_out = tiny_gpt().transformer.h[0](torch.randn(1, 4, 16))
    assert isinstance(block_out, torch.Tensor) and block_out.shape == (1, 4, 16)
    with record_attention(mha) as weights:
        mha(x, is_causal=True)
    with pytest.warns(DeprecationWarning, match="record_attention"):
        old_y, old_w = mha(x, is_causal=True, need_weights=True)
    torch.testing.assert_close(old_y, y, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(old_w, weights[0])


# ----------------------------------------------------------------------------- token ids are integers


def test_gpt_rejects_float_token_ids_naming_the_argument():
    model = tiny_gpt(block_size=8)
    with pytest.raises(ValueError, match="idx must hold integer token ids.*float32"):
        model(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="idx must hold integer token ids.*bool"):
        model(torch.zeros(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="targets must hold integer token ids"):
        model(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="idx must hold integer token ids"):
        model.generate(torch.tensor([[1.7, 2.0]]), 2)
    with pytest.raises(ValueError, match="idx must hold integer token ids"):
        model.attention_maps(torch.tensor([[1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"idx must hold token ids in \[0, 50\)"):
        model.generate(torch.tensor([[1, 50]]), 2)
    with pytest.raises(ValueError, match="ids must hold integer token ids"):
        sequence_bits(model, torch.tensor([1.0, 2.0, 3.0]))
    ids = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(model(ids.int())[0], model(ids)[0])  # any integer dtype is fine
    assert torch.equal(model.generate(ids.int(), 3, temperature=0.0), model.generate(ids, 3, temperature=0.0))


def test_decoders_of_token_ids_reject_floats_and_bools():
    char = CharTokenizer(list("abc"))
    bpe = ByteBPETokenizer([])
    np = pytest.importorskip("numpy")
    assert char.decode(torch.tensor([0, 2])) == "ac" == char.decode(np.array([0, 2])) == char.decode([0, np.int64(2)])
    for bad, needle in [([0, 1.0], "1.0"), ([0, 2.7], "2.7"), ([True], "bool"), (torch.tensor([0.0]), "float32"),
                        (np.array([1.5]), "float64"), (torch.tensor([[0, 1]]), "1-D"), (7, "int"),
                        ("ab", "str"), (torch.tensor([True]), "bool")]:
        for decode in (char.decode, bpe.decode, bpe.token_strings, decode_chars):
            with pytest.raises(ValueError, match="ids") as err:
                decode(bad)
            assert needle in str(err.value)
    assert as_token_ids([3, np.uint8(4), torch.tensor(5)], 6) == [3, 4, 5]
    with pytest.raises(ValueError, match=r"in \[0, 96\)"):
        decode_chars([-1])  # used to wrap around to the last character


def test_recurrent_and_chat_entry_points_reject_bad_ids_and_prompts():
    torch.manual_seed(0)
    lstm = CharLSTM(CharLSTMConfig(embed_dim=8, hidden_size=16))
    with pytest.raises(ValueError, match="idx must hold integer character ids"):
        lstm(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="num_chars"):
        lstm.generate("x", -1)
    tok = chat_tokenizer()
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=16))
    with pytest.raises(ValueError, match="prompts must be a non-empty list"):
        chat_generate(model, "reverse the word cat", tok)  # a str would be read as one prompt per character
    with pytest.raises(ValueError, match="max_new_tokens"):
        chat_generate(model, ["add 1 and 2"], tok, max_new_tokens=-3)
    assert END not in "".join(chat_generate(model, ["add 1 and 2", "hi"], tok, 5))


def test_no_deprecation_warnings_on_the_decoding_paths():
    model = tiny_gpt()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.generate(torch.tensor([[1, 2]]), 3)
        model.attention_maps(torch.tensor([[1, 2]]))
