"""From a waveform to the log-mel spectrogram and back (librosa does the signal processing).

A clip is a sequence of samples at :data:`~aigc_course.speech.corpus.SAMPLE_RATE`. The
short-time Fourier transform (STFT) cuts it into overlapping windows of ``n_fft`` samples,
``hop_length`` apart, and takes the spectrum of each: ``|STFT|^2`` is a *spectrogram*
``(n_fft/2 + 1, frames)``. A mel filterbank pools its frequency bins into ``n_mels`` bands,
narrow at low frequencies and wide at high ones, as hearing does; the log of the band energies
is the *log-mel spectrogram* every model of this chapter reads and writes, one ``n_mels`` vector
per frame (``(frames, n_mels)`` here, time first, like a token sequence).

Going back is harder: the log-mel keeps only band energies, no phases. :func:`mel_to_audio` finds
the least-squares linear spectrogram under the filterbank, then lets Griffin–Lim
(:func:`librosa.griffinlim`) find phases that agree with it: it alternates inverse STFT and
STFT, keeping the phases and restoring the magnitudes, until the two agree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from aigc_course.speech.corpus import SAMPLE_RATE


@dataclass(frozen=True)
class MelConfig:
    """The analysis settings: 64 ms windows every 20 ms (50 frames a second), 80 mel bands up to 8 kHz, natural log."""

    sample_rate: int = SAMPLE_RATE
    n_fft: int = 1024
    hop_length: int = 320
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0
    log_floor: float = 1e-5  # energies below this are clipped before the log (about -11.5)

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length

    def to_dict(self) -> dict:
        return asdict(self)


#: The settings every model of the chapter uses.
DEFAULT_MEL = MelConfig()


def _as_numpy_audio(audio, name: str = "audio") -> np.ndarray:
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().to("cpu", torch.float32).numpy()
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or audio.size == 0:
        raise ValueError(f"{name} must be a 1-D waveform of samples, got shape {audio.shape}")
    if not np.isfinite(audio).all():
        raise ValueError(f"{name} must hold finite samples")
    return audio


def mel_filterbank(config: MelConfig = MelConfig()) -> np.ndarray:
    """The filterbank ``(n_mels, n_fft/2 + 1)``: row ``m`` weights the STFT bins of band ``m``."""
    return _filterbank(config)


def _filterbank(config: MelConfig) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels,
                               fmin=config.fmin, fmax=config.fmax)


def log_mel(audio, config: MelConfig = MelConfig()) -> torch.Tensor:
    """Log-mel spectrogram ``(frames, n_mels)`` of a waveform ``(samples,)``, float32 on the CPU.

    ``frames = 1 + samples // hop_length`` (windows centred on the frames, zero-padded at the ends).
    """
    import librosa

    audio = _as_numpy_audio(audio)
    power = librosa.feature.melspectrogram(
        y=audio, sr=config.sample_rate, n_fft=config.n_fft, hop_length=config.hop_length,
        n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax, power=2.0,
    )
    return torch.from_numpy(np.log(np.maximum(power, config.log_floor)).T.astype(np.float32))


def mel_to_audio(log_mel_frames, config: MelConfig = MelConfig(), n_iter: int = 32, seed: int = 0) -> np.ndarray:
    """Invert a log-mel spectrogram ``(frames, n_mels)`` to a waveform ``(samples,)`` with Griffin–Lim.

    The band energies become a linear power spectrogram by non-negative least squares
    (:func:`librosa.feature.inverse.mel_to_stft`); Griffin–Lim then runs ``n_iter`` rounds
    from random phases drawn with ``seed`` (so the same input gives the same waveform).
    """
    import librosa

    if isinstance(log_mel_frames, torch.Tensor):
        log_mel_frames = log_mel_frames.detach().to("cpu", torch.float32).numpy()
    frames = np.asarray(log_mel_frames, dtype=np.float32)
    if frames.ndim != 2 or frames.shape[1] != config.n_mels or frames.shape[0] == 0:
        raise ValueError(f"log_mel_frames must have shape (frames, {config.n_mels}) with frames >= 1, "
                         f"got {frames.shape}")
    power = np.exp(frames.T)
    magnitude = librosa.feature.inverse.mel_to_stft(power, sr=config.sample_rate, n_fft=config.n_fft,
                                                    power=2.0, fmin=config.fmin, fmax=config.fmax)
    return librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=config.hop_length, n_fft=config.n_fft,
                              random_state=seed, length=(frames.shape[0] - 1) * config.hop_length)
