"""The green-list watermark (book 8.1): parity with transformers, the z-test, the decoding hook."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from aigc_course import decoding
from aigc_course.gpt import GPT, GPTConfig
from aigc_course.watermark import Watermark, generate_watermarked, green_z_score, random_token_edits

transformers = pytest.importorskip("transformers")
from transformers import WatermarkDetector, WatermarkingConfig  # noqa: E402
from transformers.generation.logits_process import WatermarkLogitsProcessor  # noqa: E402


def hf_processor(vocab_size, gamma, delta, key=15485863):
    return WatermarkLogitsProcessor(vocab_size, "cpu", greenlist_ratio=gamma, bias=delta, hashing_key=key,
                                    seeding_scheme="lefthash", context_width=1)


def hf_detector(vocab_size, gamma, delta, key=15485863, ignore_repeated=False):
    config = WatermarkingConfig(greenlist_ratio=gamma, bias=delta, hashing_key=key, seeding_scheme="lefthash")
    # bos -1 never occurs, so the detector scores every token after the first, like Watermark.score
    model_config = SimpleNamespace(bos_token_id=-1, is_encoder_decoder=False, vocab_size=vocab_size)
    return WatermarkDetector(model_config, "cpu", config, ignore_repeated_ngrams=ignore_repeated)


@pytest.mark.parametrize("vocab_size,gamma,key", [(1024, 0.25, 15485863), (75, 0.5, 7), (50, 0.1, 123)])
def test_green_lists_equal_transformers(vocab_size, gamma, key):
    ours, theirs = Watermark(vocab_size, gamma=gamma, hash_key=key), hf_processor(vocab_size, gamma, 2.0, key)
    for previous in [0, 1, 2, vocab_size // 2, vocab_size - 1]:
        green = ours.green_list(previous)
        assert torch.equal(green, theirs._get_greenlist_ids(torch.tensor([3, previous])))
        assert len(green) == int(vocab_size * gamma) == int(ours.green_mask(torch.tensor(previous)).sum())


def test_logits_processor_equals_transformers():
    torch.manual_seed(0)
    ids, logits = torch.randint(1024, (4, 9)), torch.randn(4, 1024)
    ours = Watermark(1024, gamma=0.25, delta=1.5)
    assert torch.equal(ours(logits, ids), hf_processor(1024, 0.25, 1.5)(ids, logits))
    assert torch.equal(ours(logits, ids) - logits != 0, ours.green_mask(ids[:, -1]))


@pytest.mark.parametrize("ignore_repeated", [False, True])
def test_z_scores_equal_transformers(ignore_repeated):
    torch.manual_seed(1)
    ids = torch.randint(40, (6, 30))  # a small vocabulary, so bigrams repeat
    ids[3, 10:] = ids[3, 9]  # a repeated bigram
    ours = Watermark(40, gamma=0.25, delta=2.0).score(ids, ignore_repeated_bigrams=ignore_repeated)
    theirs = hf_detector(40, 0.25, 2.0, ignore_repeated=ignore_repeated)(ids, return_dict=True)
    assert torch.equal(ours.num_scored, torch.tensor(theirs.num_tokens_scored))
    assert torch.equal(ours.num_green, torch.tensor(theirs.num_green_tokens))
    torch.testing.assert_close(ours.z_score, torch.tensor(theirs.z_score), rtol=0, atol=1e-12)
    torch.testing.assert_close(ours.p_value, torch.tensor(theirs.p_value, dtype=torch.float64), rtol=1e-9, atol=0)


def test_greedy_watermarked_generation_equals_transformers():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, block_size=32, n_layer=2, n_head=2, n_embd=32)).eval()
    prompt = torch.randint(64, (2, 3))
    watermark = Watermark(64, gamma=0.25, delta=4.0)
    ours = generate_watermarked(model, prompt, 12, watermark, temperature=0)
    config = WatermarkingConfig(greenlist_ratio=0.25, bias=4.0, seeding_scheme="lefthash")
    theirs = model.to_huggingface().generate(prompt, watermarking_config=config, do_sample=False, max_new_tokens=12,
                                             pad_token_id=0, attention_mask=torch.ones_like(prompt))
    assert torch.equal(ours, theirs)
    plain = generate_watermarked(model, prompt, 12, None, temperature=0)
    assert torch.equal(plain, model.generate(prompt, 12, temperature=0))
    # a large bias makes nearly every generated token green; the unmarked text is not
    assert watermark.score(ours[:, 2:]).green_fraction.min() > 0.9
    assert watermark.score(ours[:, 2:]).z_score.min() > watermark.score(plain[:, 2:]).z_score.max()


def test_z_score_formula_and_null_distribution():
    assert green_z_score(25, 100, 0.25) == 0.0
    assert green_z_score(40, 100, 0.25) == pytest.approx(15 / math.sqrt(100 * 0.25 * 0.75))
    # unmarked text: z is close to a standard normal whatever the tokens are
    watermark = Watermark(200, gamma=0.25)
    ids = torch.randint(200, (400, 101), generator=torch.Generator().manual_seed(0))
    z = watermark.score(ids).z_score
    assert abs(z.mean()) < 0.15 and 0.85 < z.std() < 1.15
    assert not watermark.detect(ids).any()


def test_the_green_list_cache_is_bounded(monkeypatch):
    monkeypatch.setattr("aigc_course.watermark.MAX_CACHED_LISTS", 3)
    watermark = Watermark(50)
    first = watermark.green_mask(torch.arange(5))
    assert len(watermark._masks) <= 3
    assert torch.equal(watermark.green_mask(torch.arange(5)), first)


def test_edits_keep_the_seed_token_and_rate_zero_is_identity():
    ids = torch.randint(100, (3, 50), generator=torch.Generator().manual_seed(0))
    assert torch.equal(random_token_edits(ids, 0.0, 100), ids)
    edited = random_token_edits(ids, 1.0, 100, generator=torch.Generator().manual_seed(1))
    assert torch.equal(edited[:, 0], ids[:, 0]) and (edited[:, 1:] != ids[:, 1:]).float().mean() > 0.9


def test_watermark_is_a_decoding_constraint():
    model = GPT(GPTConfig(vocab_size=32, block_size=16, n_layer=1, n_head=2, n_embd=16)).eval()
    watermark = Watermark(32, delta=100.0)  # so large that every token is green
    out = decoding.generate(model, torch.zeros(2, 1, dtype=torch.long), 10, constraints=[watermark])
    assert watermark.score(out).green_fraction.eq(1).all()


@pytest.mark.parametrize("call,name", [
    (lambda: Watermark(0), "vocab_size"),
    (lambda: Watermark(10, gamma=1.0), "gamma"),
    (lambda: Watermark(10, delta=float("nan")), "delta"),
    (lambda: Watermark(10, hash_key=-1), "hash_key"),
    (lambda: Watermark(10).green_list(-1), "previous_token"),
    (lambda: Watermark(10).score(torch.tensor([[1]])), "token_ids"),
    (lambda: Watermark(10).score(torch.tensor([1.0, 2.0])), "token_ids"),
    (lambda: Watermark(10).score(torch.tensor([1, 10])), "token_ids"),
    (lambda: Watermark(10).score("abc"), "token_ids"),
    (lambda: Watermark(10).detect([1, 2], z_threshold=None), "z_threshold"),
    (lambda: Watermark(10)(torch.zeros(1, 9), torch.zeros(1, 1, dtype=torch.long)), "logits"),
    (lambda: random_token_edits(torch.zeros(1, 3, dtype=torch.long), 1.5, 10), "rate"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
