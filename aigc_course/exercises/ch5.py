"""Chapter 5 exercises: cross-attention from pixels to words, the guided noise estimate, caption dropout.

References: :class:`aigc_course.attention.CrossAttention` (through
:func:`aigc_course.attention.scaled_dot_product_attention`),
:func:`aigc_course.diffusion.predict_noise` and
:func:`aigc_course.diffusion.text_conditioning.drop_captions`.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from aigc_course.attention import scaled_dot_product_attention
from aigc_course.diffusion.samplers import classifier_free_guidance, predict_noise
from aigc_course.diffusion.text_conditioning import PromptTokenizer, drop_captions
from aigc_course.exercises.core import Case, Exercise, Variant, register


def _randn(gen: torch.Generator, device, *shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=gen).to(device)


@lru_cache(maxsize=1)
def scene_tokenizer() -> PromptTokenizer:
    """The prompt tokenizer trained on every caption of the training split."""
    from aigc_course.data import all_scene_attributes
    from aigc_course.data.scenes import caption

    return PromptTokenizer.train([caption(a) for a in all_scene_attributes("train")])


# ---------------------------------------------------------------------------- 5.1 cross-attention


def _cross_reference(h, context, context_mask, w_q, w_k, w_v):
    b, c, height, width = h.shape
    pixels = h.reshape(b, c, height * width).transpose(1, 2)  # (B, HW, C): one query per pixel
    out, _ = scaled_dot_product_attention(pixels @ w_q, context @ w_k, context @ w_v, mask=context_mask[:, None, :])
    return h + out.transpose(1, 2).reshape(b, c, height, width)


def _cross_cases(gen: torch.Generator, device) -> list[Case]:
    cases = []
    for name, (b, c, s, length, d, pad) in (
        ("4x4 image features, 6 tokens, two padded", (2, 8, 4, 6, 5, 2)),
        ("8x8, 11 tokens, no padding", (1, 4, 8, 11, 3, 0)),
        ("a non-square shape: 2x3 pixels", (3, 6, 0, 4, 6, 1)),
    ):
        height, width = (2, 3) if s == 0 else (s, s)
        mask = torch.ones(b, length, dtype=torch.bool)
        if pad:
            mask[0, length - pad:] = False
        args = (_randn(gen, device, b, c, height, width), _randn(gen, device, b, length, d), mask.to(device),
                _randn(gen, device, c, c) / math.sqrt(c), _randn(gen, device, d, c) / math.sqrt(d),
                _randn(gen, device, d, c) / math.sqrt(d))
        cases.append(Case(name, args))
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[:, 0] = True
    cases.append(Case("only the start token is real (the empty prompt)",
                      (_randn(gen, device, 2, 4, 2, 2), _randn(gen, device, 2, 5, 3), mask.to(device),
                       _randn(gen, device, 4, 4), _randn(gen, device, 3, 4), _randn(gen, device, 3, 4))))
    return cases


def _cross_variant(kind: str):
    def wrong(case: Case):
        h, context, mask, w_q, w_k, w_v = case.args
        b, c, height, width = h.shape
        if kind == "no_mask":
            mask = torch.ones_like(mask)
        if kind == "reshape_only":
            pixels = h.reshape(b, height * width, c)
        else:
            pixels = h.reshape(b, c, height * width).transpose(1, 2)
        q, k, v = pixels @ w_q, context @ w_k, context @ w_v
        scale = c if kind == "scale_c" else math.sqrt(c)
        scores = (q @ k.transpose(-2, -1)) / scale
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v
        if kind == "reshape_only":
            out = out.reshape(b, c, height, width)
        else:
            out = out.transpose(1, 2).reshape(b, c, height, width)
        return out if kind == "no_residual" else h + out

    return wrong


register(Exercise(
    id="5.1",
    title="Cross-attention from pixels to words",
    function="pixel_cross_attention",
    reference=_cross_reference,
    cases=_cross_cases,
    variants=[
        Variant("the padding tokens were attended to: block every key where context_mask is False "
                "(score -inf) before the softmax", _cross_variant("no_mask")),
        Variant("h.reshape(B, H*W, C) scrambles channels and pixels; (B, C, H, W) -> (B, C, H*W) -> "
                "transpose(1, 2) gives one row per pixel", _cross_variant("reshape_only")),
        Variant("the block is residual: return h + the attention output", _cross_variant("no_residual")),
        Variant("the scores are scaled by 1/√d (d = C here), not 1/d", _cross_variant("scale_c")),
    ],
    error_hints=[("must match the size of tensor", "check the shapes: queries (B, HW, C), keys and values "
                  "(B, L, C); the mask (B, L) becomes (B, 1, L) to broadcast over the pixels")],
    hints=[
        "Each pixel is a query: turn h (B, C, H, W) into (B, H*W, C). Queries come from the pixels, keys "
        "and values from the words: Q = pixels W_q, K = context W_k, V = context W_v. Then softmax(QKᵀ/√C)V.",
        "Padded words must get weight 0: set their scores to -inf before the softmax, with the mask "
        "reshaped to (B, 1, L). Reshape the output back to (B, C, H, W) and add it to h.",
        "b, c, height, width = h.shape\npixels = h.reshape(b, c, height * width).transpose(1, 2)\n"
        "q, k, v = pixels @ w_q, context @ w_k, context @ w_v\n"
        "scores = q @ k.transpose(-2, -1) / math.sqrt(c)\n"
        "scores = scores.masked_fill(~context_mask[:, None, :], float('-inf'))\n"
        "out = torch.softmax(scores, dim=-1) @ v\n"
        "return h + out.transpose(1, 2).reshape(b, c, height, width)",
    ],
    explanation=(
        "Cross-attention is the attention of eq. 3.1.2 with the queries from one sequence and the "
        "keys and values from another: here every pixel of the U-Net's feature map asks which words "
        "of the prompt matter to it, and adds their values to its features. The mask removes the "
        "padding; the residual connection lets the block start as the identity."
    ),
))


# ---------------------------------------------------------------------------- 5.2 guided noise


def _tiny_unet(seed: int, device) -> torch.nn.Module:
    from aigc_course.diffusion.text_unet import TextConditionedUNet

    tok = scene_tokenizer()
    torch.manual_seed(seed)
    unet = TextConditionedUNet(tok.vocab_size, tok.pad_id, tok.context_length, in_channels=4, image_size=8,
                               channels=(8, 16), emb_dim=16, text_width=16, text_layers=1, num_heads=2)
    return unet.to(device).eval()


def _guided_reference(model, x, t, ids, null_ids, guidance_scale):
    with torch.no_grad():
        return predict_noise(model, x, t, ids, null_ids, guidance_scale)


def _guided_cases(gen: torch.Generator, device) -> list[Case]:
    tok = scene_tokenizer()
    null = tok([""])[0][0].to(device)
    seed = int(torch.randint(2**31, (1,), generator=gen))
    model = _tiny_unet(seed, device)
    prompts = ["a red circle above a blue square", "a small green cross at the top left", "a large yellow triangle on the right"]
    cases = []
    for name, n, t, s in (("3 prompts, t=500, s=3", 3, 500, 3.0), ("1 prompt, t=20, s=7.5", 1, 20, 7.5),
                          ("2 prompts, t=999, s=0 (unconditional)", 2, 999, 0.0)):
        ids = tok(prompts[:n])[0].to(device)
        cases.append(Case(name, (model, _randn(gen, device, n, 4, 8, 8), t, ids, null, s)))
    return cases


def _guided_variant(kind: str):
    def wrong(case: Case):
        model, x, t, ids, null, s = case.args
        tb = torch.full((len(x),), t, device=x.device)
        with torch.no_grad():
            cond = model(x, tb, ids)
            uncond = model(x, tb, null.expand_as(ids))
        if kind == "swapped":
            return classifier_free_guidance(cond, uncond, s)
        if kind == "one_plus_w":
            return cond + s * (cond - uncond)
        return cond

    return wrong


register(Exercise(
    id="5.2",
    title="The guided noise estimate",
    function="guided_noise_estimate",
    reference=_guided_reference,
    cases=_guided_cases,
    variants=[
        Variant("swapped: start from the empty prompt's prediction and move towards the prompt's, "
                "ε_∅ + s(ε_y − ε_∅)", _guided_variant("swapped")),
        Variant("that is the (1 + w) form ε_y + s(ε_y − ε_∅); with diffusers' guidance_scale, s = 1 gives "
                "ε_y and s = 0 gives ε_∅", _guided_variant("one_plus_w")),
        Variant("you returned the conditional prediction alone; guidance also needs the empty prompt's "
                "prediction", _guided_variant("cond")),
    ],
    error_hints=[("must match the size", "the null ids are (L,); expand them to (B, L) with "
                  "null_ids.expand_as(ids) before concatenating")],
    hints=[
        "Run the denoiser twice: with the prompt's ids and with the empty prompt's ids, on the same x and t "
        "(one batch of 2B: torch.cat). Then ε_∅ + s (ε_y − ε_∅).",
        "t_batch = torch.full((2 * B,), t, device=x.device); ids_2 = torch.cat([ids, null_ids.expand_as(ids)]); "
        "eps = model(torch.cat([x, x]), t_batch, ids_2); eps_y, eps_null = eps.chunk(2).",
        "b = len(x)\nt_batch = torch.full((2 * b,), t, device=x.device, dtype=torch.long)\n"
        "eps = model(torch.cat([x, x]), t_batch, torch.cat([ids, null_ids.expand_as(ids)]))\n"
        "eps_y, eps_null = eps.chunk(2)\nreturn eps_null + guidance_scale * (eps_y - eps_null)",
    ],
    explanation=(
        "One network trained with dropped captions predicts the noise with the prompt, $\\varepsilon_y$, "
        "and without it, $\\varepsilon_\\varnothing$ (the empty prompt). Guidance (eq. 4.4.12) moves "
        "$s$ times along their difference: $\\tilde\\varepsilon = \\varepsilon_\\varnothing + s(\\varepsilon_y - "
        "\\varepsilon_\\varnothing)$. Batching the two passes costs one forward call of twice the batch."
    ),
))


# ---------------------------------------------------------------------------- 5.3 caption dropout


def _dropout_reference(captions, p_uncond, seed):
    return drop_captions(captions, p_uncond, torch.Generator().manual_seed(seed))


def _dropout_cases(gen: torch.Generator, device) -> list[Case]:
    from aigc_course.data import captioned_scenes

    seed = int(torch.randint(2**31, (1,), generator=gen))
    _, captions, _ = captioned_scenes(64, seed=seed % 1000)
    return [
        Case("64 captions, p_uncond = 0.2", (captions, 0.2, seed)),
        Case("16 captions, p_uncond = 0.5", (captions[:16], 0.5, seed + 1)),
        Case("p_uncond = 0: nothing is dropped", (captions[:8], 0.0, seed + 2)),
        Case("p_uncond = 1: every caption is dropped", (captions[:8], 1.0, seed + 3)),
    ]


def _dropout_variant(kind: str):
    def wrong(case: Case):
        captions, p, seed = case.args
        g = torch.Generator().manual_seed(seed)
        if kind == "whole_batch":
            drop = [bool(torch.rand(1, generator=g) < p)] * len(captions)
        else:
            drop = (torch.rand(len(captions), generator=g) < p).tolist()
        if kind == "inverted":
            return ["" if not d else c for c, d in zip(captions, drop, strict=True)]
        if kind == "removed":
            return [c for c, d in zip(captions, drop, strict=True) if not d]
        if kind == "none_value":
            return [None if d else c for c, d in zip(captions, drop, strict=True)]
        return ["" if d else c for c, d in zip(captions, drop, strict=True)]

    return wrong


register(Exercise(
    id="5.3",
    title="The caption-dropout batch",
    function="caption_dropout",
    reference=_dropout_reference,
    cases=_dropout_cases,
    variants=[
        Variant("inverted: a caption is dropped when its uniform draw is *below* p_uncond "
                "(torch.rand(B) < p_uncond); you dropped the others", _dropout_variant("inverted")),
        Variant("one draw for the whole batch drops all captions or none; draw one number per caption",
                _dropout_variant("whole_batch")),
        Variant("a dropped caption is replaced, not removed: the batch must keep one caption per image, "
                "in order", _dropout_variant("removed")),
        Variant("the null caption is the empty string \"\" (which the tokenizer turns into the start token "
                "alone), not None", _dropout_variant("none_value")),
    ],
    hints=[
        "Draw one uniform number per caption from torch.Generator().manual_seed(seed); where it is below "
        "p_uncond, put the empty caption \"\" in that caption's place.",
        "drop = torch.rand(len(captions), generator=g) < p_uncond, then a list comprehension over "
        "zip(captions, drop.tolist()).",
        "g = torch.Generator().manual_seed(seed)\ndrop = torch.rand(len(captions), generator=g) < p_uncond\n"
        "return [\"\" if d else c for c, d in zip(captions, drop.tolist())]",
    ],
    explanation=(
        "Classifier-free guidance needs $\\varepsilon(x_t, \\varnothing)$ from the same network. Training "
        "replaces each caption by the empty caption with probability $p_\\text{uncond}$ (15 % for the "
        "shipped model), one independent draw per caption, so every batch mixes conditional and "
        "unconditional examples and the network learns both. The empty caption tokenizes to the start "
        "token alone, so the text encoder still has one token to read."
    ),
))
