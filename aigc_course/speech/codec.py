"""Audio tokens: each log-mel frame becomes the index of its nearest codebook entry.

A language model predicts *tokens*. To let the course's GPT speak, each 20 ms log-mel frame
``(n_mels,)`` is replaced by the nearest of ``K`` prototype frames, found by k-means on the
training corpus (as HuBERT's discrete units are, Hsu et al. 2021, on learned features instead of
mel bands). A clip becomes a sequence of token ids, and a token sequence decodes back to a
log-mel spectrogram of prototype frames.

For the vocoder, the codebook also keeps each prototype's *linear* magnitude spectrum
``(n_fft/2 + 1,)``, solved once by non-negative least squares from its mel bands when the
codebook is fitted (:func:`librosa.feature.inverse.mel_to_stft`, seconds per clip if done at
generation time); Griffin–Lim then turns a token sequence into a waveform
(:meth:`MelCodebook.to_audio`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from aigc_course.pretrained import capture_config
from aigc_course.speech.features import DEFAULT_MEL, MelConfig


class MelCodebook(nn.Module):
    """``num_codes`` prototype log-mel frames ``(K, n_mels)`` and their linear magnitudes ``(K, n_fft/2 + 1)``."""

    @capture_config
    def __init__(self, num_codes: int = 256, n_mels: int = 80, n_fft: int = 1024):
        super().__init__()
        if isinstance(num_codes, bool) or not isinstance(num_codes, int) or num_codes < 2:
            raise ValueError(f"num_codes must be an int >= 2, got {num_codes!r}")
        self.num_codes, self.n_mels = num_codes, n_mels
        self.register_buffer("centroids", torch.zeros(num_codes, n_mels))
        self.register_buffer("magnitudes", torch.zeros(num_codes, n_fft // 2 + 1))

    @torch.no_grad()
    def fit(self, frames: torch.Tensor, config: MelConfig = DEFAULT_MEL, seed: int = 0,
            max_frames: int = 60_000, max_iter: int = 50) -> MelCodebook:
        """k-means (scikit-learn, k-means++ start) on log-mel ``frames (N, n_mels)``; then each centroid's magnitudes.

        At most ``max_frames`` frames, drawn at random with ``seed``, and ``max_iter`` rounds of
        Lloyd's algorithm: the centroids move little after that.
        """
        import librosa
        from sklearn.cluster import KMeans

        if frames.dim() != 2 or frames.shape[1] != self.n_mels:
            raise ValueError(f"frames must have shape (N, {self.n_mels}), got {tuple(frames.shape)}")
        data = frames.float().numpy()
        if len(data) > max_frames:
            data = data[np.random.default_rng(seed).choice(len(data), max_frames, replace=False)]
        kmeans = KMeans(n_clusters=self.num_codes, n_init=1, max_iter=max_iter, random_state=seed).fit(data)
        centroids = kmeans.cluster_centers_.astype(np.float32)
        magnitude = librosa.feature.inverse.mel_to_stft(
            np.exp(centroids.T), sr=config.sample_rate, n_fft=config.n_fft, power=2.0,
            fmin=config.fmin, fmax=config.fmax)  # (n_fft/2 + 1, K)
        self.centroids.copy_(torch.from_numpy(centroids))
        self.magnitudes.copy_(torch.from_numpy(magnitude.T.astype(np.float32)))
        return self

    def encode(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Log-mel frames ``(..., n_mels)`` -> token ids ``(...)`` of the nearest centroids (Euclidean)."""
        if log_mel.shape[-1] != self.n_mels:
            raise ValueError(f"log_mel must have shape (..., {self.n_mels}), got {tuple(log_mel.shape)}")
        flat = log_mel.reshape(-1, self.n_mels).to(self.centroids)
        distances = torch.cdist(flat, self.centroids)  # (N, K)
        return distances.argmin(-1).reshape(log_mel.shape[:-1])

    def _check_codes(self, codes: torch.Tensor) -> torch.Tensor:
        if not isinstance(codes, torch.Tensor) or codes.is_floating_point():
            raise ValueError(f"codes must be an integer tensor of token ids, got {codes!r:.80}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.num_codes):
            raise ValueError(f"codes must lie in [0, {self.num_codes}), got {int(codes.min())}..{int(codes.max())}")
        return codes.long()

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Token ids ``(...)`` -> their prototype log-mel frames ``(..., n_mels)``."""
        return self.centroids[self._check_codes(codes).to(self.centroids.device)]

    def to_audio(self, codes: torch.Tensor, config: MelConfig = DEFAULT_MEL, n_iter: int = 32,
                 seed: int = 0) -> np.ndarray:
        """A waveform ``(samples,)`` for the tokens ``(frames,)`` of one clip: prototype magnitudes, then Griffin–Lim."""
        import librosa

        codes = self._check_codes(codes)
        if codes.dim() != 1 or len(codes) == 0:
            raise ValueError(f"codes must be one clip's tokens (frames,) with frames >= 1, got {tuple(codes.shape)}")
        magnitude = self.magnitudes[codes.to(self.magnitudes.device)].T.cpu().numpy()  # (n_fft/2 + 1, frames)
        return librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=config.hop_length, n_fft=config.n_fft,
                                  random_state=seed, length=(len(codes) - 1) * config.hop_length)
