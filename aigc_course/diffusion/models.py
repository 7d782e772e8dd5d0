"""Noise-prediction networks :math:`\\varepsilon_\\theta(x_t, t[, y])` (book section 3.3.2).

* :class:`MLPDenoiser` -- for 2-D points: a residual MLP whose input is the point plus a
  sinusoidal embedding of ``t``.
* :class:`DigitUNet` -- for 8x8 digits: a small U-Net (8x8 -> 4x4 -> 8x8) with residual
  blocks, self-attention at the 4x4 level (reusing :class:`aigc_course.attention.MultiHeadAttention`)
  and a class-label embedding with an extra *null* label for classifier-free guidance.

Both take ``(x, t, labels)`` and return a tensor shaped like ``x``: the scheduler in
:mod:`aigc_course.diffusion.schedule` and the samplers know nothing about the network.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from aigc_course.attention import MultiHeadAttention
from aigc_course.pretrained import capture_config


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps ``t (B,)`` -> ``(B, dim)`` (the Transformer's positional encoding).

    Half the channels are :math:`\\cos(t\\,\\omega_i)`, half :math:`\\sin(t\\,\\omega_i)`, with
    frequencies :math:`\\omega_i = \\text{max\\_period}^{-i/(dim/2)}`.
    """
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


def _check_t(t: torch.Tensor, batch: int) -> None:
    if not isinstance(t, torch.Tensor) or t.shape != (batch,):
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"t must be a tensor of shape ({batch},), got {shape}")


# --------------------------------------------------------------------------- 2-D


class MLPDenoiser(nn.Module):
    """:math:`\\varepsilon_\\theta(x_t, t)` for points ``x (B, dim)``; ``t (B,)`` long -> ``(B, dim)``."""

    @capture_config
    def __init__(self, dim: int = 2, hidden: int = 128, num_blocks: int = 3, time_dim: int = 64):
        super().__init__()
        self.time_dim = time_dim
        self.in_proj = nn.Linear(dim, hidden)
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, 2 * hidden), nn.SiLU(), nn.Linear(2 * hidden, hidden))
            for _ in range(num_blocks)
        )
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is not None:
            raise ValueError("MLPDenoiser is unconditional; labels must be None")
        if x.ndim != 2 or x.shape[1] != self.config["dim"]:
            raise ValueError(f"x must have shape (B, {self.config['dim']}), got {tuple(x.shape)}")
        _check_t(t, len(x))
        h = self.in_proj(x) + self.time_mlp(timestep_embedding(t, self.time_dim))
        for block in self.blocks:
            h = h + block(h)  # residual: each block refines the running estimate
        return self.out(h)


# --------------------------------------------------------------------------- U-Net


class ResBlock(nn.Module):
    """``(B, C_in, H, W)`` -> ``(B, C_out, H, W)``; the embedding ``(B, E)`` shifts the features."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, groups: int = 8, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, out_ch)
        self.norm2 = nn.GroupNorm(groups, out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention2d(nn.Module):
    """Self-attention over the ``H*W`` positions of ``(B, C, H, W)``, with a residual connection."""

    def __init__(self, channels: int, num_heads: int, groups: int = 8):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.attn = MultiHeadAttention(channels, num_heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(x).reshape(b, c, h * w).transpose(1, 2)  # (B, HW, C)
        out = self.attn(tokens).transpose(1, 2).reshape(b, c, h, w)
        return x + out


class DigitUNet(nn.Module):
    """Class-conditional :math:`\\varepsilon_\\theta(x_t, t, y)` for ``x (B, 1, 8, 8)``.

    ``labels (B,)`` take values ``0..num_classes-1``, or ``null_label = num_classes`` (also
    used when ``labels`` is None) for the unconditional model that guidance needs.
    Layout: 8x8 at ``channels[0]`` -> 4x4 at ``channels[1]`` with attention -> back to 8x8,
    with skip connections across.
    """

    @capture_config
    def __init__(
        self,
        channels: tuple[int, int] = (32, 64),
        num_classes: int = 10,
        emb_dim: int = 128,
        num_heads: int = 4,
        dropout: float = 0.0,
        in_channels: int = 1,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.null_label = num_classes
        c1, c2 = channels
        self.emb_dim = emb_dim
        self.time_mlp = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.label_emb = nn.Embedding(num_classes + 1, emb_dim)
        self.in_conv = nn.Conv2d(in_channels, c1, 3, padding=1)
        self.down1 = ResBlock(c1, c1, emb_dim, dropout=dropout)
        self.downsample = nn.Conv2d(c1, c1, 3, stride=2, padding=1)  # 8x8 -> 4x4
        self.down2 = ResBlock(c1, c2, emb_dim, dropout=dropout)
        self.down2_attn = SelfAttention2d(c2, num_heads)
        self.mid = ResBlock(c2, c2, emb_dim, dropout=dropout)
        self.mid_attn = SelfAttention2d(c2, num_heads)
        self.up2 = ResBlock(2 * c2, c2, emb_dim, dropout=dropout)
        self.upsample = nn.ConvTranspose2d(c2, c1, 2, stride=2)  # 4x4 -> 8x8
        self.up1 = ResBlock(2 * c1, c1, emb_dim, dropout=dropout)
        self.out = nn.Sequential(nn.GroupNorm(8, c1), nn.SiLU(), nn.Conv2d(c1, in_channels, 3, padding=1))

    def check_labels(self, labels: torch.Tensor | None, batch: int, allow_null: bool = True) -> torch.Tensor | None:
        """Raise ``ValueError`` unless ``labels`` is None or ``(batch,)`` ints in range."""
        if labels is None:
            return None
        labels = torch.as_tensor(labels)
        if labels.is_floating_point() or labels.shape != (batch,):
            raise ValueError(f"labels must be {batch} integer class ids, got {labels.dtype} {tuple(labels.shape)}")
        high = self.num_classes if allow_null else self.num_classes - 1
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) > high):
            raise ValueError(
                f"labels must lie in [0, {high}] ({self.num_classes} classes"
                f"{', plus the null label ' + str(self.null_label) if allow_null else ''}), "
                f"got values from {int(labels.min())} to {int(labels.max())}"
            )
        return labels.long()

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, 1, 8, 8)``, ``t (B,)`` long, ``labels (B,)`` or None -> ``(B, 1, 8, 8)``."""
        if x.ndim != 4 or x.shape[1] != self.config["in_channels"] or x.shape[2] % 2 or x.shape[3] % 2:
            raise ValueError(f"x must have shape (B, {self.config['in_channels']}, H, W) with even H, W; got {tuple(x.shape)}")
        _check_t(t, len(x))
        labels = self.check_labels(labels, len(x))
        if labels is None:
            labels = torch.full((len(x),), self.null_label, device=x.device, dtype=torch.long)
        emb = self.time_mlp(timestep_embedding(t, self.emb_dim)) + self.label_emb(labels.to(x.device))
        h1 = self.down1(self.in_conv(x), emb)  # (B, c1, 8, 8)
        h2 = self.down2_attn(self.down2(self.downsample(h1), emb))  # (B, c2, 4, 4)
        h = self.mid_attn(self.mid(h2, emb))
        h = self.up2(torch.cat([h, h2], dim=1), emb)
        h = self.upsample(h)  # (B, c1, 8, 8)
        h = self.up1(torch.cat([h, h1], dim=1), emb)
        return self.out(h)
