"""The autoencoder of latent diffusion: images <-> a small latent grid (Chapter 5).

Stable Diffusion (Rombach et al. 2022) runs the diffusion model not on pixels but on the
latent of an autoencoder trained beforehand: an image ``(3, 32, 32)`` becomes ``z`` of shape
``(latent_channels, 8, 8)`` (4x fewer positions per side), the denoiser works on ``z`` and
the decoder turns the final ``z`` back into pixels. The diffusion model then spends its
compute on what the scene *is*, not on anti-aliased edges, which the decoder draws.

The encoder cuts the image into 4x4 patches and mixes neighbouring patches with convolutions;
the decoder mirrors it. Training
minimises the L1 reconstruction error plus a small penalty on :math:`\\lVert z\\rVert^2` that keeps
the latent's scale bounded (the role of Stable Diffusion's tiny KL term). After training,
:meth:`SceneAutoencoder.fit_latent_scale` records the latent's per-channel mean and standard
deviation, and :meth:`encode` returns standardised latents (mean 0, std 1 per channel, the
scale the noise schedule assumes, like SD's factor 0.18215).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from aigc_course.pretrained import capture_config


class SceneAutoencoder(nn.Module):
    """``(B, 3, S, S)`` in ``[0, 1]`` <-> latents ``(B, latent_channels, S/4, S/4)``.

    Encoder: a 4x4 stride-4 convolution cuts the image into 4x4 patches (ViT's patchify), then
    3x3 convolutions mix each patch with its neighbours down to ``latent_channels`` numbers per
    patch. Decoder: 3x3 convolutions, a stride-4 transposed convolution back to pixels and
    ``refine_layers`` 3x3 convolutions at full resolution that sharpen edges across patch borders. Almost all the compute is
    on the ``S/4 x S/4`` grid.
    """

    @capture_config
    def __init__(self, latent_channels: int = 8, channels: tuple[int, int] = (16, 96), image_size: int = 32,
                 refine_layers: int = 1):
        super().__init__()
        c0, c1 = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(3, c1, 4, stride=4), nn.SiLU(),  # S/4: one vector per 4x4 patch
            nn.Conv2d(c1, c1, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c1, c1, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c1, latent_channels, 1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(latent_channels, c1, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c1, c1, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c1, c1, 3, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(c1, c0, 4, stride=4), nn.SiLU(),  # S: a 4x4 patch from each vector
            *[m for _ in range(refine_layers - 1) for m in (nn.Conv2d(c0, c0, 3, padding=1), nn.SiLU())],
            nn.Conv2d(c0, 3, 3, padding=1),
        )
        self.register_buffer("latent_mean", torch.zeros(latent_channels))
        self.register_buffer("latent_std", torch.ones(latent_channels))

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        side = self.config["image_size"] // 4
        return (self.config["latent_channels"], side, side)

    def _check(self, images: torch.Tensor) -> None:
        size = self.config["image_size"]
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or tuple(images.shape[1:]) != (3, size, size):
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images must have shape (B, 3, {size}, {size}) in [0, 1], got {got}")

    def _stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.latent_mean.view(1, -1, 1, 1), self.latent_std.view(1, -1, 1, 1)

    def encode_raw(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder's output ``(B, C, S/4, S/4)``, before standardisation."""
        self._check(images)
        return self.encoder(images * 2 - 1)

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """Unclamped reconstruction ``(B, 3, S, S)`` from raw latents (what training scores)."""
        return (self.decoder(z) + 1) / 2

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images -> standardised latents ``(B, C, S/4, S/4)``."""
        z = self.encode_raw(images)
        mean, std = self._stats()
        return (z - mean) / std

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Standardised latents -> images ``(B, 3, S, S)`` in ``[0, 1]``."""
        if latents.ndim != 4 or tuple(latents.shape[1:]) != self.latent_shape:
            raise ValueError(f"latents must have shape (B, {', '.join(map(str, self.latent_shape))}), got {tuple(latents.shape)}")
        mean, std = self._stats()
        return self.decode_raw(latents * std + mean).clamp(0, 1)

    def loss(self, images: torch.Tensor, latent_penalty: float = 1e-3) -> torch.Tensor:
        """L1 reconstruction error plus ``latent_penalty * mean(z^2)``; a scalar."""
        z = self.encode_raw(images)
        return F.l1_loss(self.decode_raw(z), images) + latent_penalty * z.pow(2).mean()

    @torch.no_grad()
    def fit_latent_scale(self, images: torch.Tensor, batch_size: int = 512) -> None:
        """Set the per-channel mean and std of the raw latents of ``images`` (the standardisation)."""
        z = torch.cat([self.encode_raw(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
        self.latent_mean.copy_(z.mean(dim=(0, 2, 3)))
        self.latent_std.copy_(z.std(dim=(0, 2, 3)).clamp_min(1e-6))
