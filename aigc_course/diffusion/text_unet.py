"""A text-conditioned U-Net :math:`\\varepsilon_\\theta(x_t, t, \\text{prompt})` (Chapter 5).

Stable Diffusion's denoiser, sized for a CPU: a U-Net whose levels each hold a residual block
(:class:`~aigc_course.diffusion.models.ResBlock`, shifted by the time embedding), optional
self-attention among the pixels (:class:`~aigc_course.diffusion.models.SelfAttention2d`) and
cross-attention from the pixels to the prompt's tokens
(:class:`~aigc_course.diffusion.text_conditioning.SpatialCrossAttention`). The prompt enters
twice, as in Imagen: its token features through cross-attention, and its pooled feature added
to the time embedding. A learned position embedding after the first convolution lets the
network place objects at absolute positions ("at the top left").

The network owns its :class:`~aigc_course.diffusion.text_conditioning.TextEncoder` and takes
the prompt as token ids, so it has the same call as every denoiser of the course,
``model(x (B, C, S, S), t (B,), ids (B, L)) -> (B, C, S, S)``, the noise estimate: the samplers of
:mod:`aigc_course.diffusion.samplers` step it unchanged, with the empty prompt's ids as the
null condition of classifier-free guidance.

**What the network itself outputs** (``prediction``). With ``"epsilon"`` the U-Net's output is
the noise estimate. With ``"v"`` it is the *velocity* :math:`v = \\sqrt{\\bar\\alpha_t}\\,\\varepsilon
- \\sqrt{1-\\bar\\alpha_t}\\,x_0` (Salimans & Ho 2022), and :meth:`TextConditionedUNet.forward` turns
it into the noise estimate :math:`\\hat\\varepsilon = \\sqrt{1-\\bar\\alpha_t}\\,x_t + \\sqrt{\\bar\\alpha_t}\\,\\hat v`
(exact for the true ``v``). This is a preconditioning in the sense of Karras et al. (2022): near
pure noise, :math:`\\hat\\varepsilon \\approx x_t` comes from the skip term, and the network's own
output is an estimate of :math:`-x_0` -- the layout of the picture -- instead of a tiny correction
to a copy of its input, which is where an epsilon network fails to place objects.
"""

from __future__ import annotations

import torch
from torch import nn

from aigc_course.diffusion.models import ResBlock, SelfAttention2d, _check_t, timestep_embedding
from aigc_course.diffusion.schedule import PREDICTIONS, NoiseSchedule, noise_from_velocity
from aigc_course.diffusion.text_conditioning import SpatialCrossAttention, TextEncoder
from aigc_course.pretrained import capture_config


class UNetLevel(nn.Module):
    """One level: ``ResBlock`` -> optional self-attention -> optional cross-attention to the text."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, context_dim: int, num_heads: int,
                 self_attention: bool, cross_attention: bool, dropout: float):
        super().__init__()
        self.res = ResBlock(in_ch, out_ch, emb_dim, dropout=dropout)
        self.attn = SelfAttention2d(out_ch, num_heads) if self_attention else None
        self.cross = SpatialCrossAttention(out_ch, context_dim, num_heads) if cross_attention else None

    def forward(self, h, emb, context, context_mask):
        h = self.res(h, emb)
        if self.attn is not None:
            h = self.attn(h)
        if self.cross is not None:
            h = self.cross(h, context, context_mask)
        return h


class TextConditionedUNet(nn.Module):
    """:math:`\\varepsilon_\\theta(x_t, t, y)` for ``x (B, in_channels, S, S)`` and prompt ids ``y (B, L)``.

    ``channels[i]`` is the width at resolution ``S / 2**i``. Levels at resolution
    ``<= attention_resolution`` get self-attention, levels at ``<= cross_attention_resolution``
    cross-attention; the middle block has both. ``pad_id`` marks padding in ``ids``.
    ``prediction`` is ``"epsilon"`` or ``"v"`` (module docstring); ``"v"`` needs the noise
    schedule the model is trained with (``schedule``, ``timesteps``).
    """

    PREDICTIONS = PREDICTIONS

    @capture_config
    def __init__(
        self,
        vocab_size: int,
        pad_id: int,
        context_length: int = 16,
        in_channels: int = 4,
        image_size: int = 8,
        channels: tuple[int, ...] = (64, 128),
        emb_dim: int = 128,
        text_width: int = 64,
        text_layers: int = 2,
        num_heads: int = 4,
        attention_resolution: int = 4,
        cross_attention_resolution: int = 8,
        dropout: float = 0.0,
        position_embedding: bool = True,
        prediction: str = "epsilon",
        schedule: str = "cosine",
        timesteps: int = 1000,
    ):
        super().__init__()
        if prediction not in self.PREDICTIONS:
            raise ValueError(f"prediction must be one of {self.PREDICTIONS}, got {prediction!r}")
        channels = tuple(channels)
        if image_size % 2 ** (len(channels) - 1):
            raise ValueError(f"image_size {image_size} must be divisible by 2**{len(channels) - 1} for channels {channels}")
        self.pad_id = pad_id
        self.emb_dim = emb_dim
        self.text_encoder = TextEncoder(vocab_size, context_length, text_width, text_layers, num_heads)
        self.time_mlp = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.text_to_emb = nn.Linear(text_width, emb_dim)

        def level(i: int, in_ch: int, out_ch: int) -> UNetLevel:
            res = image_size // 2**i
            return UNetLevel(in_ch, out_ch, emb_dim, text_width, num_heads, res <= attention_resolution,
                             res <= cross_attention_resolution, dropout)

        self.in_conv = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        # A learned vector per position: "at the top left" names absolute places, which
        # convolutions (translation-equivariant) and attention (permutation-equivariant) cannot see.
        self.position = nn.Parameter(torch.zeros(1, channels[0], image_size, image_size)) if position_embedding else None
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        prev = channels[0]
        for i, ch in enumerate(channels):
            self.down.append(level(i, prev, ch))
            if i < len(channels) - 1:
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
            prev = ch
        last = len(channels) - 1
        self.mid = UNetLevel(prev, prev, emb_dim, text_width, num_heads, True, True, dropout)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(channels))):
            self.up.append(level(i, 2 * channels[i], channels[i]))
            if i > 0:
                self.upsample.append(nn.ConvTranspose2d(channels[i], channels[i - 1], 2, stride=2))
        self.out = nn.Sequential(nn.GroupNorm(8, channels[0]), nn.SiLU(), nn.Conv2d(channels[0], in_channels, 3, padding=1))
        self._last = last
        self.prediction = prediction
        # alpha-bar per timestep, rebuilt from the config (not saved): only "v" needs it
        alphas_cumprod = NoiseSchedule(schedule, timesteps).alphas_cumprod if prediction == "v" else torch.ones(0)
        self.register_buffer("alphas_cumprod", alphas_cumprod, persistent=False)

    def encode_text(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``ids (B, L)`` -> token features ``(B, L, text_width)`` and mask ``(B, L)``."""
        mask = ids != self.pad_id
        return self.text_encoder(ids, mask), mask

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The noise estimate ``(B, C, S, S)`` for ``x (B, C, S, S)``, ``t (B,)`` long and prompt ids ``labels (B, L)``."""
        out = self.network_output(x, t, labels)
        if self.prediction == "epsilon":
            return out
        return noise_from_velocity(self.alphas_cumprod, x, t, out)

    def network_output(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """What the U-Net outputs ``(B, C, S, S)``: the noise estimate, or ``v`` when ``prediction="v"``."""
        size, c_in = self.config["image_size"], self.config["in_channels"]
        if x.ndim != 4 or tuple(x.shape[1:]) != (c_in, size, size):
            raise ValueError(f"x must have shape (B, {c_in}, {size}, {size}), got {tuple(x.shape)}")
        _check_t(t, len(x))
        if not isinstance(labels, torch.Tensor) or labels.dtype != torch.long or labels.ndim != 2 or len(labels) != len(x):
            got = f"{labels.dtype} {tuple(labels.shape)}" if isinstance(labels, torch.Tensor) else type(labels).__name__
            raise ValueError(f"labels must be prompt ids of shape ({len(x)}, L), torch.long; got {got}")
        context, mask = self.encode_text(labels.to(x.device))
        emb = self.time_mlp(timestep_embedding(t, self.emb_dim)) + self.text_to_emb(TextEncoder.pooled(context))
        h = self.in_conv(x)
        if self.position is not None:
            h = h + self.position
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, emb, context, mask)
            skips.append(h)
            if i < self._last:
                h = self.downsample[i](h)
        h = self.mid(h, emb, context, mask)
        for j, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], dim=1), emb, context, mask)
            if j < self._last:
                h = self.upsample[j](h)
        return self.out(h)

    def cross_attention_layers(self) -> list[tuple[str, SpatialCrossAttention]]:
        """Every cross-attention block with its name, e.g. ``("down.0", ...)``, top to bottom."""
        return [(name.removesuffix(".cross"), m) for name, m in self.named_modules() if isinstance(m, SpatialCrossAttention)]
