"""The shipped text-to-speech pipeline (checkpoint ``text-to-speech``).

``pipe(text)`` reads one text or a list of texts of spoken digits and returns waveforms
``(N, samples)`` in ``[-1, 1]`` at ``pipe.sample_rate``; shorter clips are padded with silence
(zeros) at the end. Three steps, each its own method so the book can show them:

1. :meth:`TextToSpeechPipeline.generate_tokens` -- the GPT writes audio tokens after the text
   prompt, one at a time, in the course's decoding loop (:func:`aigc_course.decoding.generate`),
   allowed only audio tokens and the closing token, and stopped by the closing token;
2. the codebook turns tokens into log-mel frames (:meth:`~.MelCodebook.decode`) and linear
   magnitudes;
3. Griffin–Lim finds phases for those magnitudes (:meth:`~.MelCodebook.to_audio`).

:meth:`TextToSpeechPipeline.alignment` records the attention from each audio token to the text's
characters while the GPT reads a clip.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from aigc_course import decoding
from aigc_course.attention import record_attention
from aigc_course.gpt import GPT
from aigc_course.runtime import make_generator
from aigc_course.sampling import make_sampler
from aigc_course.speech import tokens
from aigc_course.speech.codec import MelCodebook
from aigc_course.speech.corpus import check_words
from aigc_course.speech.features import MelConfig

PEAK = 0.9  # every clip is scaled to this peak, as the real clips are


class TextToSpeechPipeline:
    """A GPT over text and audio tokens, the audio codebook, and Griffin–Lim."""

    # how aigc_course.pretrained builds it from a checkpoint
    checkpoint_parts = {"model": GPT, "codebook": MelCodebook}
    checkpoint_settings = {"text_length": int, "max_frames": int, "mel": dict, "sampling": dict}

    def __init__(self, model: GPT, codebook: MelCodebook, config: dict):
        self.model, self.codebook = model.eval(), codebook.eval()
        self.config = dict(config)
        self.text_length, self.max_frames = int(config["text_length"]), int(config["max_frames"])
        self.mel_config = MelConfig(**config["mel"])
        self.sampling = dict(config["sampling"])
        expected = tokens.vocab_size(codebook.num_codes)
        if model.config.vocab_size != expected:
            raise ValueError(f"the GPT's vocab_size {model.config.vocab_size} does not fit a codebook of "
                             f"{codebook.num_codes} codes (expected {expected})")
        if model.config.block_size < self.text_length + 1 + self.max_frames:
            raise ValueError(f"the GPT's block_size {model.config.block_size} is shorter than text_length + 1 + "
                             f"max_frames = {self.text_length + 1 + self.max_frames}")

    @classmethod
    def from_parts(cls, config: dict, model: GPT, codebook: MelCodebook) -> TextToSpeechPipeline:
        return cls(model, codebook, config)

    @property
    def device(self) -> torch.device:
        return self.model.transformer.wte.weight.device

    @property
    def sample_rate(self) -> int:
        return self.mel_config.sample_rate

    # ------------------------------------------------------------------ checks

    def check_texts(self, text, name: str = "text") -> list[str]:
        """One text or a non-empty list of texts -> the checked texts (see :func:`~.corpus.check_words`)."""
        if isinstance(text, str):
            return [check_words(text, name, self.text_length)]
        if not isinstance(text, Sequence) or isinstance(text, bytes) or len(text) == 0:
            raise ValueError(f"{name} must be a str or a non-empty list of str, got {text!r:.80}")
        return [check_words(t, f"{name}[{i}]", self.text_length) for i, t in enumerate(text)]

    def _options(self, temperature, top_k, griffin_lim_iters) -> tuple[float, int | None, int]:
        temperature = self.sampling["temperature"] if temperature is None else temperature
        top_k = self.sampling.get("top_k") if top_k is None else top_k
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 10:
            raise ValueError(f"temperature must be a number in [0, 10] (0 = greedy), got {temperature!r}")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k must be a positive int or None, got {top_k!r}")
        if isinstance(griffin_lim_iters, bool) or not isinstance(griffin_lim_iters, int) or griffin_lim_iters < 1:
            raise ValueError(f"griffin_lim_iters must be a positive int, got {griffin_lim_iters!r}")
        return float(temperature), top_k, griffin_lim_iters

    # ------------------------------------------------------------------ the three steps

    @torch.no_grad()
    def generate_tokens(self, text, *, temperature: float | None = None, top_k: int | None = None,
                        seed: int | None = None) -> list[torch.Tensor]:
        """The audio tokens ``(frames_i,)`` (codebook ids, on the CPU) the GPT writes for each text.

        ``temperature`` and ``top_k`` default to the checkpoint's ``sampling`` settings;
        ``temperature=0`` is greedy. An int ``seed`` repeats the tokens exactly; ``None`` draws
        from torch's global RNG.
        """
        texts = self.check_texts(text)
        temperature, top_k, _ = self._options(temperature, top_k, 1)
        generator = make_generator(seed)
        prompts = tokens.encode_prompts(texts, self.text_length).to(self.device)
        allowed = [tokens.END_AUDIO, *range(tokens.AUDIO_OFFSET, tokens.AUDIO_OFFSET + self.codebook.num_codes)]
        out = decoding.generate(
            self.model, prompts, self.max_frames + 1, make_sampler(temperature, top_k),
            constraints=[decoding.allow_only(allowed)], stop_token=tokens.END_AUDIO, generator=generator,
        )[:, prompts.shape[1]:].cpu()
        clips = []
        for row in out:
            ends = (row == tokens.END_AUDIO).nonzero()
            row = row[: int(ends[0]) if len(ends) else self.max_frames]  # a clip never outgrows max_frames
            clips.append(row - tokens.AUDIO_OFFSET if len(row) else torch.zeros(1, dtype=torch.long))
        return clips

    def log_mel(self, codes: torch.Tensor) -> torch.Tensor:
        """The log-mel frames ``(frames, n_mels)`` of one clip's audio tokens."""
        return self.codebook.decode(codes).cpu()

    def vocode(self, codes: Sequence[torch.Tensor], griffin_lim_iters: int = 32) -> torch.Tensor:
        """Audio tokens of each clip -> waveforms ``(N, samples)`` in ``[-1, 1]`` on ``pipe.device``, zero-padded."""
        waves = []
        for clip in codes:
            wave = self.codebook.to_audio(clip, self.mel_config, n_iter=griffin_lim_iters)
            peak = float(np.abs(wave).max())
            waves.append(wave * (PEAK / peak) if peak > 0 else wave)
        out = torch.zeros(len(waves), max(len(w) for w in waves))
        for row, wave in enumerate(waves):
            out[row, : len(wave)] = torch.from_numpy(np.clip(wave, -1.0, 1.0))
        return out.to(self.device)

    def __call__(self, text, *, temperature: float | None = None, top_k: int | None = None,
                 griffin_lim_iters: int = 32, seed: int | None = None) -> torch.Tensor:
        """Speak ``text`` (a str or a list of str): waveforms ``(N, samples)`` in ``[-1, 1]``.

        ``text`` holds one to four digits written as words, e.g. ``"four two seven"`` (case and
        repeated spaces are ignored). An empty text, a character or word outside that vocabulary
        or more words than the model reads is a ``ValueError`` naming ``text``.
        """
        self.check_texts(text)
        *_, griffin_lim_iters = self._options(temperature, top_k, griffin_lim_iters)
        codes = self.generate_tokens(text, temperature=temperature, top_k=top_k, seed=seed)
        return self.vocode(codes, griffin_lim_iters)

    # ------------------------------------------------------------------ looking inside

    @torch.no_grad()
    def alignment(self, text: str, codes: torch.Tensor, layers: Sequence[int] | None = None) -> torch.Tensor:
        """Attention from each audio token to each word of ``text``: ``(frames, words)``.

        The GPT reads the text and the clip's tokens once while :func:`record_attention`
        collects every layer's weights; the rows of the audio positions, restricted to the
        text's words and renormalised, are averaged over the heads of ``layers``
        (default: every layer).
        """
        clean = self.check_texts(text)[0]
        ids, _ = tokens.training_batch([clean], [codes.cpu()], self.text_length)
        with record_attention(self.model) as weights:
            self.model(ids.to(self.device))
        chosen = range(len(weights)) if layers is None else layers
        maps = torch.stack([weights[i][0] for i in chosen]).mean(dim=(0, 1)).cpu()  # (T, T)
        start = self.text_length  # the position of BEGIN_AUDIO predicts the first frame
        rows = maps[start : start + len(codes), : len(clean.split())]
        return rows / rows.sum(-1, keepdim=True).clamp(min=1e-12)
