"""``pretrained.load("captioner")``: images ``(N, 3, H, W)`` in ``[0, 1]`` -> ``N`` captions."""

from __future__ import annotations

import torch

from aigc_course import decoding
from aigc_course.attention import record_attention
from aigc_course.captioning.models import Captioner, CaptionVocabulary, check_images


class CaptionPipeline:
    """A trained :class:`~aigc_course.captioning.models.Captioner` with its word vocabulary.

    ``pipe(images, *, num_beams=1) -> list[str]``: greedy decoding (``num_beams=1``) or beam search
    (:func:`aigc_course.decoding.beam_search`). Decoding is deterministic, so there is no seed.
    """

    checkpoint_parts = {"model": Captioner}
    checkpoint_settings = {"tokenizer": dict}

    def __init__(self, model: Captioner, tokenizer: CaptionVocabulary, config: dict | None = None):
        if not isinstance(model, Captioner):
            raise ValueError(f"model must be a Captioner, got {type(model).__name__}")
        if not isinstance(tokenizer, CaptionVocabulary) or tokenizer.vocab_size != model.config["vocab_size"]:
            raise ValueError(f"tokenizer must be a CaptionVocabulary of {model.config['vocab_size']} ids")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.config = dict(config or {})

    @classmethod
    def from_parts(cls, config: dict, model: Captioner) -> CaptionPipeline:
        return cls(model, CaptionVocabulary.from_dict(config["tokenizer"]), config)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def image_size(self) -> int:
        return self.model.config["image_size"]

    def _check(self, images, num_beams, batch_size) -> torch.Tensor:
        if isinstance(num_beams, bool) or not isinstance(num_beams, int) or num_beams < 1:
            raise ValueError(f"num_beams must be an int >= 1, got {num_beams!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        return check_images(images, self.image_size)

    @torch.no_grad()
    def token_ids(self, images: torch.Tensor, *, num_beams: int = 1, batch_size: int = 256) -> torch.Tensor:
        """Decoded ids ``(N, L)``, ``<bos>`` first; rows that stopped early are padded with ``<eos>``."""
        images = self._check(images, num_beams, batch_size)
        limit = self.model.config["block_size"] - 1
        out = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size].to(self.device, torch.float32)
            memory = self.model.encoder(chunk)
            state = self.model.decoder.decoding_state(len(chunk), memory=memory)
            prompt = torch.full((len(chunk), 1), self.tokenizer.bos_id, dtype=torch.long, device=self.device)
            never_bos = [_forbid(self.tokenizer.bos_id)]
            if num_beams == 1:
                ids = decoding.generate(self.model.decoder, prompt, limit, state=state, constraints=never_bos,
                                        stop_token=self.tokenizer.eos_id)
            else:
                ids = decoding.beam_search(self.model.decoder, prompt, limit, num_beams, state=state,
                                           constraints=never_bos, stop_token=self.tokenizer.eos_id).sequences
            out.append(torch.nn.functional.pad(ids, (0, limit + 1 - ids.shape[1]), value=self.tokenizer.eos_id))
        return torch.cat(out)

    def __call__(self, images: torch.Tensor, *, num_beams: int = 1, batch_size: int = 256) -> list[str]:
        """Captions of ``images (N, 3, H, W)`` in ``[0, 1]``: a list of ``N`` strings."""
        return [self.tokenizer.decode(row.tolist()) for row in self.token_ids(images, num_beams=num_beams,
                                                                              batch_size=batch_size)]

    @torch.no_grad()
    def word_attention(self, image: torch.Tensor, *, num_beams: int = 1) -> tuple[list[str], torch.Tensor]:
        """Where the decoder looked while writing each word of one ``image (3, H, W)``.

        Returns the caption's words and maps ``(n_words, grid, grid)``: the cross-attention
        from the position that *predicted* each word to the image patches, averaged over the
        heads of the last decoder layer (each map sums to 1).
        """
        if not isinstance(image, torch.Tensor) or image.ndim != 3:
            raise ValueError(f"image must be one image (3, H, W), got "
                             f"{tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__}")
        ids = self.token_ids(image[None], num_beams=num_beams)[0]
        words = self.tokenizer.decode(ids.tolist()).split()
        idx = ids[: len(words) + 1][None]  # <bos> w_1 .. w_n: position t predicts word t+1
        last = self.model.decoder.transformer.h[-1].cross_attn
        with record_attention(last) as maps:
            self.model(image[None].to(self.device, torch.float32), idx)
        grid = self.model.encoder.grid
        return words, maps[0][0].mean(0)[: len(words)].reshape(len(words), grid, grid).cpu()


def _forbid(token: int):
    def constrain(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return logits.index_fill(-1, torch.tensor([token], device=logits.device), float("-inf"))

    return constrain
