"""The course's models in the Hugging Face libraries: ``transformers`` and ``diffusers``.

* :func:`to_transformers_tokenizer` turns the course's :class:`~aigc_course.tokenizers.ByteBPETokenizer`
  into a ``transformers.PreTrainedTokenizerFast`` (a ``tokenizers`` byte-level BPE with the same
  pre-tokenizer regex and the same merges, so the ids are identical);
  :func:`to_transformers` gives ``code-gpt`` as ``(GPT2LMHeadModel, tokenizer)``, ready for
  ``model.generate()`` and ``pipeline("text-generation")``.
* :func:`diffusers_scheduler` builds a ``DDPMScheduler`` or ``DDIMScheduler`` with a course
  :class:`~aigc_course.diffusion.schedule.NoiseSchedule`'s betas, and
  :func:`sample_with_scheduler` lets it step a course denoiser (a model predicts, a scheduler
  steps), drawing the noise the course's sampler draws, so a seed gives the same samples.

``transformers`` and ``diffusers`` are imported only when called.
"""

from __future__ import annotations

import inspect

import torch

from aigc_course._checks import check_choice, check_int, check_number
from aigc_course.diffusion.samplers import predict_noise
from aigc_course.diffusion.schedule import NoiseSchedule
from aigc_course.tokenizers import ByteBPETokenizer

SCHEDULERS = ("ddpm", "ddim")


def byte_alphabet() -> dict[int, str]:
    """GPT-2's map from each byte to a printable character (so a byte-level token is a string).

    Printable Latin-1 bytes map to themselves; the other 68 (controls, space, ...) to
    ``chr(256 + k)`` in byte order. ``tokenizers``' ``ByteLevel`` uses the same table.
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def to_transformers_tokenizer(tokenizer: ByteBPETokenizer):
    """A ``PreTrainedTokenizerFast`` that gives exactly ``tokenizer.encode``'s ids and decodes them back.

    The course tokenizer splits text with its regex and merges byte pairs by rank; the fast
    tokenizer is a ``tokenizers`` BPE model over GPT-2's byte alphabet with the same regex as a
    ``Split`` pre-tokenizer and the same merges in the same order. No special tokens: the
    course's GPT has none.
    """
    if not isinstance(tokenizer, ByteBPETokenizer):
        raise ValueError(f"tokenizer must be a ByteBPETokenizer (the code-gpt tokenizer), got {type(tokenizer).__name__}")
    from transformers import PreTrainedTokenizerFast

    # the `tokenizers` building blocks, through transformers (which depends on them) and the
    # module it converts its own slow tokenizers with
    from transformers.convert_slow_tokenizer import BPE, Regex, Tokenizer, decoders, pre_tokenizers

    alphabet = byte_alphabet()
    strings = ["".join(alphabet[b] for b in token) for token in tokenizer.vocab]
    if len(set(strings)) != len(strings):
        raise ValueError("tokenizer has two ids for the same bytes; a transformers vocabulary needs one id per string")
    vocab = {s: i for i, s in enumerate(strings)}
    merges = [(strings[a], strings[b]) for a, b in tokenizer.merges]
    fast = Tokenizer(BPE(vocab=vocab, merges=merges, fuse_unk=False))
    fast.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(tokenizer.pattern), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),  # bytes -> alphabet, no second split
    ])
    fast.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=fast, clean_up_tokenization_spaces=False,
                                   model_max_length=None)


def to_transformers(pipe):
    """``(GPT2LMHeadModel, PreTrainedTokenizerFast)`` for a :class:`~aigc_course.gpt.GPTPipeline`
    (``code-gpt``), on ``pipe.device``. ``save_pretrained`` on both writes a folder that
    ``AutoModelForCausalLM`` / ``AutoTokenizer`` load offline."""
    from aigc_course.gpt import GPTPipeline

    if not isinstance(pipe, GPTPipeline):
        raise ValueError(f"pipe must be a GPTPipeline (pretrained.load('code-gpt')), got {type(pipe).__name__}")
    tokenizer = to_transformers_tokenizer(pipe.tokenizer)
    tokenizer.model_max_length = pipe.model.config.block_size
    return pipe.model.to_huggingface().to(pipe.device), tokenizer


def diffusers_scheduler(schedule: NoiseSchedule, kind: str = "ddim"):
    """A diffusers ``DDPMScheduler`` (``kind="ddpm"``) or ``DDIMScheduler`` over ``schedule``'s betas.

    ``trained_betas`` carries the betas themselves, so any course schedule (linear scaled to
    ``T``, cosine) maps exactly; epsilon prediction, no clipping, no thresholding, leading
    timestep spacing -- the course sampler's settings.
    """
    if not isinstance(schedule, NoiseSchedule):
        raise ValueError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    check_choice(kind, "kind", SCHEDULERS)
    import diffusers

    common = dict(num_train_timesteps=schedule.timesteps, trained_betas=schedule.betas.double().numpy(),
                  prediction_type="epsilon", clip_sample=False, timestep_spacing="leading")
    if kind == "ddpm":
        return diffusers.DDPMScheduler(variance_type="fixed_small", **common)
    return diffusers.DDIMScheduler(set_alpha_to_one=True, steps_offset=0, **common)


@torch.no_grad()
def sample_with_scheduler(model: torch.nn.Module, scheduler, shape: tuple[int, ...], *,
                          num_inference_steps: int, labels: torch.Tensor | None = None,
                          null_label: int | None = None, guidance_scale: float = 1.0, eta: float = 0.0,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """Step a course denoiser with a diffusers scheduler: ``x_T ~ N(0, I)`` of ``shape (B, ...)`` -> ``x_0``.

    The noise is drawn as :func:`aigc_course.diffusion.sample` draws it -- ``x_T`` first, then
    one draw per noisy step, all on the CPU ``generator`` -- and handed to the scheduler, so
    the same generator state gives the same samples as the course's loop.
    """
    for attr in ("set_timesteps", "step", "timesteps"):
        if not hasattr(scheduler, attr):
            raise ValueError(f"scheduler must be a diffusers scheduler (with .{attr}), got {type(scheduler).__name__}")
    check_int(num_inference_steps, "num_inference_steps", low=1, high=scheduler.config.num_train_timesteps)
    check_number(eta, "eta", low=0.0)
    params = inspect.signature(scheduler.step).parameters
    if eta > 0 and "eta" not in params:
        raise ValueError(f"eta > 0 needs a DDIM scheduler; {type(scheduler).__name__}.step takes no eta")
    device = next(model.parameters()).device
    if labels is not None:
        labels = torch.as_tensor(labels).long().to(device)
    scheduler.set_timesteps(num_inference_steps)
    x = torch.randn(shape, generator=generator).to(device)
    for t in scheduler.timesteps:
        eps = predict_noise(model, x, int(t), labels, null_label, guidance_scale)
        if "eta" in params:  # DDIM: noise only when eta > 0, given as variance_noise
            noise = torch.randn(shape, generator=generator).to(device) if eta > 0 else None
            x = scheduler.step(eps, t, x, eta=eta, variance_noise=noise).prev_sample
        else:  # DDPM adds noise at every step but the last; it draws it from the generator itself
            x = scheduler.step(eps, t, x, generator=generator).prev_sample
    return x
