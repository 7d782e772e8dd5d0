"""A text-conditioned video denoiser :math:`\\varepsilon_\\theta(x_t, t, \\text{prompt})` (Chapter 2.3.4).

The image U-Net of Chapter 5 (:mod:`aigc_course.diffusion.text_unet`) extended over time, as
in Video Diffusion Models (Ho et al. 2022) and Make-A-Video (Singer et al. 2022). A clip
``x (B, F, C, H, W)`` is read as ``B*F`` images: every residual block, spatial self-attention
and cross-attention to the caption runs on each frame on its own, with the same weights as an
image model. The new parts work along time: **temporal attention** (:class:`TemporalAttention`),
where each pixel position becomes a sequence of ``F`` features, one per frame, and attends
along it, and a **temporal convolution** (:class:`TemporalConv`, kernel 3 over the frames) after
each residual block, which sees the neighbouring frames up close. This is where frames learn
about each other (the object keeps its colour, the motion keeps its direction).

**Why factorised.** Full space-time attention treats a clip as one sequence of ``F*H*W``
tokens and costs :math:`(FHW)^2` scores per layer. Spatial attention per frame, then temporal
attention per pixel, costs :math:`F\\cdot(HW)^2 + HW\\cdot F^2`: for 8 frames of 8x8
features (this model's attention level) that is 32,768 + 4,096 scores instead of 262,144, and
the saving grows with every frame and pixel added. The price is that a pixel reaches another pixel of another frame in two
hops (space, then time) instead of one -- which the stack of levels provides.

**Switching time off.** ``temporal`` (one flag per clip) turns every temporal layer into
the identity for that clip, so its frames are denoised independently: the network is then an
image model run per frame. Training does this for a share of the clips (VDM's joint image and
video training), so the same weights give the frame-by-frame baseline the chapter compares with.

Call: ``model(x (B, F, C, S, S), t (B,), ids (B, L), temporal=None) -> (B, F, C, S, S)``, one
timestep and one prompt per clip, so the samplers of :mod:`aigc_course.diffusion.samplers` step it
unchanged, with the empty prompt's ids as the null condition of classifier-free guidance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from aigc_course.attention import MultiHeadAttention
from aigc_course.diffusion.models import ResBlock, SelfAttention2d, _check_t, timestep_embedding
from aigc_course.diffusion.schedule import PREDICTIONS, NoiseSchedule, noise_from_velocity
from aigc_course.diffusion.text_conditioning import SpatialCrossAttention, TextEncoder
from aigc_course.pretrained import capture_config


class TemporalAttention(nn.Module):
    """Each pixel attends over the frames: ``h (B*F, C, H, W)`` -> same shape, residual.

    The features of one position in all ``F`` frames form a sequence ``(B*H*W, F, C)``; a
    learned embedding of the frame index (up to ``max_frames``) tells the frames apart, then
    :class:`aigc_course.attention.MultiHeadAttention` mixes them.
    ``enabled (B,)`` bool: clips where it is ``False`` get the identity (their frames stay independent).
    """

    def __init__(self, channels: int, num_heads: int, max_frames: int, groups: int = 8):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.frame_embedding = nn.Parameter(torch.zeros(max_frames, channels))
        nn.init.normal_(self.frame_embedding, std=0.02)
        self.attn = MultiHeadAttention(channels, num_heads)

    def forward(self, h: torch.Tensor, num_frames: int, enabled: torch.Tensor | None = None) -> torch.Tensor:
        bf, c, height, width = h.shape
        b = bf // num_frames
        tokens = self.norm(h).reshape(b, num_frames, c, height * width).permute(0, 3, 1, 2)  # (B, HW, F, C)
        tokens = tokens + self.frame_embedding[:num_frames]
        out = self.attn(tokens.reshape(b * height * width, num_frames, c))  # (B*HW, F, C)
        out = out.reshape(b, height * width, num_frames, c).permute(0, 2, 3, 1)  # (B, F, C, HW)
        if enabled is not None:
            out = out * enabled.to(out.dtype)[:, None, None, None]
        return h + out.reshape(bf, c, height, width)


class TemporalConv(nn.Module):
    """A convolution along time at every pixel: ``h (B*F, C, H, W)`` -> same shape, residual.

    Kernel 3 over the frames (zero padding at the clip's ends), 1x1 in space: after the
    ResBlock's 3x3 spatial convolutions it makes a (2+1)-D convolution, Make-A-Video's
    pseudo-3-D layer, which sees an object one pixel away in the neighbouring frame -- the
    local motion that attention over one pixel's frames reaches only through many layers.
    ``enabled (B,)`` as in :class:`TemporalAttention`.
    """

    def __init__(self, channels: int, groups: int = 8):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.conv = nn.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0))

    def forward(self, h: torch.Tensor, num_frames: int, enabled: torch.Tensor | None = None) -> torch.Tensor:
        bf, c, height, width = h.shape
        b = bf // num_frames
        x = F.silu(self.norm(h)).reshape(b, num_frames, c, height * width).transpose(1, 2)  # (B, C, F, HW)
        # the (3, 1, 1) kernel as a 2-D convolution over (F, HW): the same numbers, a faster CPU kernel
        out = F.conv2d(x, self.conv.weight[..., 0], self.conv.bias, padding=(1, 0)).transpose(1, 2)  # (B, F, C, HW)
        if enabled is not None:
            out = out * enabled.to(out.dtype)[:, None, None, None]
        return h + out.reshape(bf, c, height, width)


class VideoUNetLevel(nn.Module):
    """One level on ``(B*F, C, H, W)``: ResBlock -> temporal convolution -> spatial attention ->
    temporal attention -> cross-attention.

    Every part except the two temporal ones is the image U-Net's level, applied to each frame.
    """

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, context_dim: int, num_heads: int, max_frames: int,
                 self_attention: bool, temporal_attention: bool, cross_attention: bool, dropout: float):
        super().__init__()
        self.res = ResBlock(in_ch, out_ch, emb_dim, dropout=dropout)
        self.temporal_conv = TemporalConv(out_ch) if temporal_attention else None
        self.attn = SelfAttention2d(out_ch, num_heads) if self_attention else None
        self.temporal = TemporalAttention(out_ch, num_heads, max_frames) if temporal_attention else None
        self.cross = SpatialCrossAttention(out_ch, context_dim, num_heads) if cross_attention else None

    def forward(self, h, emb, context, context_mask, num_frames, enabled):
        h = self.res(h, emb)
        if self.temporal_conv is not None:
            h = self.temporal_conv(h, num_frames, enabled)
        if self.attn is not None:
            h = self.attn(h)
        if self.temporal is not None:
            h = self.temporal(h, num_frames, enabled)
        if self.cross is not None:
            h = self.cross(h, context, context_mask)
        return h


class TextToVideoUNet(nn.Module):
    """:math:`\\varepsilon_\\theta(x_t, t, y)` for clips ``x (B, F, in_channels, S, S)``, ``F <= max_frames``.

    ``channels[i]`` is the width at resolution ``S / 2**i``. Levels at resolution
    ``<= attention_resolution`` get spatial self-attention, ``<= temporal_resolution`` temporal
    attention, ``<= cross_attention_resolution`` cross-attention to the prompt; the middle block
    has all three. ``pad_id`` marks padding in the prompt ids. ``prediction="v"``: the network
    outputs the velocity and ``forward`` returns the noise estimate, as in
    :class:`~aigc_course.diffusion.text_unet.TextConditionedUNet`.
    """

    @capture_config
    def __init__(
        self,
        vocab_size: int,
        pad_id: int,
        context_length: int = 16,
        in_channels: int = 3,
        image_size: int = 24,
        max_frames: int = 8,
        channels: tuple[int, ...] = (32, 64),
        emb_dim: int = 128,
        text_width: int = 64,
        text_layers: int = 2,
        num_heads: int = 4,
        attention_resolution: int = 12,
        temporal_resolution: int = 24,
        cross_attention_resolution: int = 24,
        dropout: float = 0.0,
        prediction: str = "epsilon",
        schedule: str = "cosine",
        timesteps: int = 1000,
    ):
        super().__init__()
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        channels = tuple(channels)
        if image_size % 2 ** (len(channels) - 1):
            raise ValueError(f"image_size {image_size} must be divisible by 2**{len(channels) - 1} for channels {channels}")
        self.pad_id = pad_id
        self.emb_dim = emb_dim
        self.text_encoder = TextEncoder(vocab_size, context_length, text_width, text_layers, num_heads)
        self.time_mlp = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.text_to_emb = nn.Linear(text_width, emb_dim)

        def level(i: int, in_ch: int, out_ch: int) -> VideoUNetLevel:
            res = image_size // 2**i
            return VideoUNetLevel(in_ch, out_ch, emb_dim, text_width, num_heads, max_frames, res <= attention_resolution,
                                  res <= temporal_resolution, res <= cross_attention_resolution, dropout)

        self.in_conv = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        prev = channels[0]
        for i, ch in enumerate(channels):
            self.down.append(level(i, prev, ch))
            if i < len(channels) - 1:
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
            prev = ch
        self.mid = VideoUNetLevel(prev, prev, emb_dim, text_width, num_heads, max_frames, True, True, True, dropout)
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(len(channels))):
            self.up.append(level(i, 2 * channels[i], channels[i]))
            if i > 0:
                self.upsample.append(nn.ConvTranspose2d(channels[i], channels[i - 1], 2, stride=2))
        self.out = nn.Sequential(nn.GroupNorm(8, channels[0]), nn.SiLU(), nn.Conv2d(channels[0], in_channels, 3, padding=1))
        self._last = len(channels) - 1
        self.prediction = prediction
        alphas_cumprod = NoiseSchedule(schedule, timesteps).alphas_cumprod if prediction == "v" else torch.ones(0)
        self.register_buffer("alphas_cumprod", alphas_cumprod, persistent=False)

    def encode_text(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``ids (B, L)`` -> token features ``(B, L, text_width)`` and mask ``(B, L)``."""
        mask = ids != self.pad_id
        return self.text_encoder(ids, mask), mask

    def _check(self, x, t, labels, temporal) -> None:
        size, c_in, max_f = self.config["image_size"], self.config["in_channels"], self.config["max_frames"]
        if x.ndim != 5 or tuple(x.shape[2:]) != (c_in, size, size) or not 1 <= x.shape[1] <= max_f:
            raise ValueError(f"x must have shape (B, F, {c_in}, {size}, {size}) with 1 <= F <= {max_f}, got {tuple(x.shape)}")
        _check_t(t, len(x))
        if not isinstance(labels, torch.Tensor) or labels.dtype != torch.long or labels.ndim != 2 or len(labels) != len(x):
            got = f"{labels.dtype} {tuple(labels.shape)}" if isinstance(labels, torch.Tensor) else type(labels).__name__
            raise ValueError(f"labels must be prompt ids of shape ({len(x)}, L), torch.long; got {got}")
        if temporal is not None and not isinstance(temporal, bool) and (
                not isinstance(temporal, torch.Tensor) or temporal.dtype != torch.bool or temporal.shape != (len(x),)):
            raise ValueError(f"temporal must be None, a bool or a bool tensor of shape ({len(x)},), got {temporal!r:.80}")

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor,
                temporal: bool | torch.Tensor | None = None) -> torch.Tensor:
        """The noise estimate ``(B, F, C, S, S)`` for ``x (B, F, C, S, S)``, ``t (B,)`` long, prompt ids ``labels (B, L)``.

        ``temporal``: ``None``/``True`` attends across frames for every clip, ``False`` for none
        (each frame denoised alone), or a bool tensor ``(B,)`` per clip.
        """
        out = self.network_output(x, t, labels, temporal)
        return out if self.prediction == "epsilon" else noise_from_velocity(self.alphas_cumprod, x, t, out)

    def network_output(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor,
                       temporal: bool | torch.Tensor | None = None) -> torch.Tensor:
        """What the U-Net outputs ``(B, F, C, S, S)``: the noise estimate, or ``v`` when ``prediction="v"``."""
        self._check(x, t, labels, temporal)
        b, f = x.shape[:2]
        if temporal is False:
            enabled = torch.zeros(b, dtype=torch.bool, device=x.device)
        elif temporal is None or temporal is True:
            enabled = None
        else:
            enabled = temporal.to(x.device)
        context, mask = self.encode_text(labels.to(x.device))
        emb = self.time_mlp(timestep_embedding(t, self.emb_dim)) + self.text_to_emb(TextEncoder.pooled(context))
        # every frame of a clip shares its clip's timestep, prompt and token features
        emb, context, mask = (z.repeat_interleave(f, dim=0) for z in (emb, context, mask))
        h = self.in_conv(x.reshape(b * f, *x.shape[2:]))
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, emb, context, mask, f, enabled)
            skips.append(h)
            if i < self._last:
                h = self.downsample[i](h)
        h = self.mid(h, emb, context, mask, f, enabled)
        for j, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], dim=1), emb, context, mask, f, enabled)
            if j < self._last:
                h = self.upsample[j](h)
        return self.out(h).reshape(x.shape)
