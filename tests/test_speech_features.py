"""Log-mel features against an STFT computed here with NumPy, and Griffin–Lim's round trip."""

import numpy as np
import pytest
import torch

from aigc_course.speech.features import MelConfig, log_mel, mel_filterbank, mel_to_audio

CONFIG = MelConfig()


def tone(freq: float, seconds: float = 0.5, sr: int = CONFIG.sample_rate) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def numpy_log_mel(audio: np.ndarray, c: MelConfig) -> np.ndarray:
    """Centred frames (zero padding, librosa's default), a periodic Hann window, |rfft|^2, filterbank, log."""
    padded = np.pad(audio, c.n_fft // 2)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(c.n_fft) / c.n_fft)
    frames = np.stack([padded[i : i + c.n_fft] * window
                       for i in range(0, len(padded) - c.n_fft + 1, c.hop_length)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (frames, n_fft/2 + 1)
    return np.log(np.maximum(power @ mel_filterbank(c).T, c.log_floor))


def test_log_mel_matches_a_numpy_stft():
    rng = np.random.default_rng(0)
    audio = (tone(440.0) + 0.1 * rng.standard_normal(8000)).astype(np.float32)
    ours = log_mel(audio).numpy()
    expected = numpy_log_mel(audio, CONFIG)
    assert ours.shape == expected.shape == (1 + len(audio) // CONFIG.hop_length, CONFIG.n_mels)
    assert np.allclose(ours, expected, atol=2e-3)


def test_log_mel_shape_dtype_and_tensor_input():
    feats = log_mel(torch.from_numpy(tone(1000.0, 1.0)))
    assert feats.dtype == torch.float32 and feats.shape == (1 + 16000 // 320, 80)
    assert CONFIG.frames_per_second == 50


def test_a_tone_lights_the_mel_band_of_its_frequency():
    bank = mel_filterbank()
    for freq in (300.0, 1000.0, 4000.0):
        band = int(log_mel(tone(freq)).mean(0).argmax())
        centre = int(bank[:, int(round(freq / CONFIG.sample_rate * CONFIG.n_fft))].argmax())
        assert abs(band - centre) <= 1


def test_silence_sits_at_the_log_floor():
    feats = log_mel(np.zeros(4000, np.float32))
    assert torch.allclose(feats, torch.full_like(feats, float(np.log(CONFIG.log_floor))))


def test_bad_audio_is_refused():
    with pytest.raises(ValueError, match="1-D waveform"):
        log_mel(np.zeros((2, 100), np.float32))
    with pytest.raises(ValueError, match="1-D waveform"):
        log_mel(np.zeros(0, np.float32))
    with pytest.raises(ValueError, match="finite"):
        log_mel(np.full(1000, np.nan, np.float32))
    with pytest.raises(ValueError, match=r"shape \(frames, 80\)"):
        mel_to_audio(torch.zeros(10, 64))


def test_griffin_lim_round_trip_keeps_the_spectrogram():
    chord = tone(300.0) + tone(800.0) + tone(2000.0)
    feats = log_mel(chord)
    audio = mel_to_audio(feats, n_iter=32, seed=0)
    assert audio.shape == ((len(feats) - 1) * CONFIG.hop_length,)
    assert np.array_equal(audio, mel_to_audio(feats, n_iter=32, seed=0))
    again = log_mel(audio)
    inner = slice(3, len(again) - 3)  # the edges lose half a window
    loud = feats[inner] > feats.max() - 5  # the bands that carry the chord (the rest is at the floor)
    assert (again[inner] - feats[inner])[loud].abs().mean() < 0.5
