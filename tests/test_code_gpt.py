"""The shipped ``code-gpt`` checkpoint: loads, generates, and beats the n-gram baseline."""

import pytest
import torch

from aigc_course import pretrained
from aigc_course.classic.ngram import NGramLanguageModel
from aigc_course.data import python_corpus
from aigc_course.gpt import GPT, GPTPipeline, bits_per_char
from aigc_course.tokenizers import ByteBPETokenizer


@pytest.fixture(scope="module")
def pipe():
    return pretrained.load("code-gpt", device="cpu")


def test_checkpoint_is_registered_small_and_documented(pipe):
    entry = pretrained.info("code-gpt")
    assert entry["builder"] == "aigc_course.gpt:GPTPipeline"
    assert entry["script"] == "scripts/train_code_gpt.py"
    assert entry["bytes"] <= 10 * 1024 * 1024
    cfg = pipe.config
    assert {"model", "tokenizer", "training", "data", "metrics"} <= set(cfg)
    assert cfg["data"]["chars"]["test"] == len(python_corpus().test)
    assert cfg["metrics"]["test_bits_per_char"] > 0


def test_pipeline_has_model_and_tokenizer(pipe):
    assert isinstance(pipe, GPTPipeline)
    assert isinstance(pipe.model, GPT) and not pipe.model.training
    assert isinstance(pipe.tokenizer, ByteBPETokenizer)
    assert pipe.tokenizer.vocab_size == pipe.model.config.vocab_size


def test_generation_returns_text_and_is_seeded(pipe):
    kw = dict(max_new_tokens=30, temperature=0.8, top_k=20, top_p=0.95)
    a = pipe("def main():\n", seed=1, **kw)
    assert isinstance(a, str) and a.startswith("def main():\n") and len(a) > len("def main():\n")
    assert pipe("def main():\n", seed=1, **kw) == a
    greedy = pipe("import ", max_new_tokens=10, temperature=0.0)
    assert greedy == pipe("import ", max_new_tokens=10, temperature=0.0, seed=5)


def test_beats_best_ngram_on_held_out_slice(pipe):
    corpus = python_corpus()
    text = corpus.test[:20_000]
    best = min(NGramLanguageModel(n).fit(corpus.train).bits_per_char(text) for n in (3, 4, 5))
    with torch.no_grad():
        ours = bits_per_char(pipe.model, pipe.tokenizer, text)
    assert ours < best, (ours, best)
