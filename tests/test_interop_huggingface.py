"""code-gpt through transformers (tokenizer, generate, pipeline) and diffusers schedulers stepping digits-ddpm."""

from __future__ import annotations

import pytest
import torch

from aigc_course import pretrained
from aigc_course.diffusion import sample
from aigc_course.interop import (
    byte_alphabet,
    diffusers_scheduler,
    sample_with_scheduler,
    to_transformers,
    to_transformers_tokenizer,
)
from aigc_course.tokenizers import ByteBPETokenizer, CharTokenizer

transformers = pytest.importorskip("transformers")
diffusers = pytest.importorskip("diffusers")

PROMPT = "def load(self, path):\n"


@pytest.fixture(scope="module")
def code_gpt():
    return pretrained.load("code-gpt", device="cpu")


@pytest.fixture(scope="module")
def hf(code_gpt):
    return to_transformers(code_gpt)


def test_byte_alphabet_is_a_printable_bijection():
    table = byte_alphabet()
    assert sorted(table) == list(range(256)) and len(set(table.values())) == 256
    assert table[ord("a")] == "a" and table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ"  # GPT-2's


def test_fast_tokenizer_gives_the_course_ids(code_gpt, hf):
    _, tokenizer = hf
    texts = [PROMPT + "    return open(path).read()  # 读取\n", "it's we'll 42x\t\n\n  y", "",
             code_gpt.tokenizer.decode(list(range(256, 1024)))]
    for text in texts:
        ids = code_gpt.tokenizer.encode(text)
        assert tokenizer.encode(text) == ids
        assert tokenizer.decode(ids) == text


def test_generate_and_pipeline_give_the_course_greedy_tokens(code_gpt, hf):
    model, tokenizer = hf
    ids = torch.tensor([code_gpt.tokenizer.encode(PROMPT)])
    ours = code_gpt.model.generate(ids, 24, temperature=0)
    theirs = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=24, do_sample=False)
    assert torch.equal(theirs, ours)
    generator = transformers.pipeline("text-generation", model=model, tokenizer=tokenizer, device=code_gpt.device)
    text = generator(PROMPT, max_new_tokens=24, do_sample=False)[0]["generated_text"]
    assert text == code_gpt(PROMPT, max_new_tokens=24, temperature=0)


def test_tokenizer_saves_and_reloads_offline(hf, tmp_path, code_gpt):
    _, tokenizer = hf
    tokenizer.save_pretrained(tmp_path)
    again = transformers.AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    assert again.encode(PROMPT) == code_gpt.tokenizer.encode(PROMPT)


def test_tokenizer_refuses_what_it_cannot_convert(code_gpt):
    with pytest.raises(ValueError, match="tokenizer must be a ByteBPETokenizer"):
        to_transformers_tokenizer(CharTokenizer.train("abc"))
    with pytest.raises(ValueError, match="two ids for the same bytes"):
        to_transformers_tokenizer(ByteBPETokenizer([(97, 98), (256, 99), (98, 99), (97, 258)]))
    with pytest.raises(ValueError, match="pipe must be a GPTPipeline"):
        to_transformers(code_gpt.model)


@pytest.mark.parametrize("kind, eta", [("ddpm", 0.0), ("ddim", 0.0), ("ddim", 1.0)])
def test_diffusers_schedulers_step_digits_ddpm_like_the_course(kind, eta):
    pipe = pretrained.load("digits-ddpm", device="cpu")
    labels = torch.tensor([3, 7])
    kw = dict(labels=labels, null_label=pipe.model.null_label, guidance_scale=2.0, num_inference_steps=8)
    ours = sample(pipe.model, pipe.schedule, (2, 1, 8, 8), sampler=kind, eta=eta,
                  generator=torch.Generator().manual_seed(0), **kw)
    scheduler = diffusers_scheduler(pipe.schedule, kind)
    assert type(scheduler).__name__ == f"{kind.upper()}Scheduler"
    theirs = sample_with_scheduler(pipe.model, scheduler, (2, 1, 8, 8), eta=eta,
                                   generator=torch.Generator().manual_seed(0), **kw)
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-5)


def test_scheduler_bad_inputs():
    pipe = pretrained.load("digits-ddpm", device="cpu")
    with pytest.raises(ValueError, match="kind must be one of"):
        diffusers_scheduler(pipe.schedule, "euler")
    with pytest.raises(ValueError, match="schedule must be a NoiseSchedule"):
        diffusers_scheduler("linear")
    with pytest.raises(ValueError, match="eta > 0 needs a DDIM scheduler"):
        sample_with_scheduler(pipe.model, diffusers_scheduler(pipe.schedule, "ddpm"), (1, 1, 8, 8),
                              num_inference_steps=2, eta=0.5)
    with pytest.raises(ValueError, match="scheduler must be a diffusers scheduler"):
        sample_with_scheduler(pipe.model, object(), (1, 1, 8, 8), num_inference_steps=2)
