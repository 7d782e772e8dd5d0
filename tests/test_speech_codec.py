"""The audio codebook (k-means tokens) and the text-and-audio token sequence."""

import pytest
import torch

from aigc_course.speech import tokens
from aigc_course.speech.codec import MelCodebook
from aigc_course.speech.features import MelConfig

SMALL = MelConfig(n_mels=8)


def clustered_frames(centres: torch.Tensor, per: int = 200, noise: float = 0.05) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return (centres.repeat_interleave(per, 0) + noise * torch.randn(len(centres) * per, centres.shape[1], generator=gen))


def fitted_codebook():
    centres = torch.linspace(-8, 2, 4)[:, None] + torch.linspace(0, 1, 8)[None, :]  # (4, 8) log-mel frames
    return MelCodebook(num_codes=4, n_mels=8, n_fft=SMALL.n_fft).fit(clustered_frames(centres), SMALL), centres


def test_kmeans_finds_the_centres_and_encode_picks_the_nearest():
    codebook, centres = fitted_codebook()
    order = codebook.centroids[:, 0].argsort()
    assert torch.allclose(codebook.centroids[order], centres, atol=0.02)
    codes = codebook.encode(centres + 0.1)
    assert torch.equal(codebook.decode(codes), codebook.centroids[codes])
    assert torch.allclose(codebook.decode(codes), centres, atol=0.05)
    assert codebook.encode(torch.zeros(2, 3, 8)).shape == (2, 3)


def test_magnitudes_reproduce_the_mel_energies():
    from aigc_course.speech.features import mel_filterbank

    codebook, _ = fitted_codebook()
    mel_power = (codebook.magnitudes ** 2) @ torch.from_numpy(mel_filterbank(SMALL)).T  # (K, n_mels)
    assert torch.allclose(mel_power.log(), codebook.centroids, atol=0.3)


def test_to_audio_gives_one_hop_per_frame():
    codebook, _ = fitted_codebook()
    audio = codebook.to_audio(torch.tensor([0, 1, 1, 2, 3]), SMALL)
    assert audio.shape == (4 * SMALL.hop_length,)


def test_codebook_config_rebuilds_it_and_bad_codes_are_refused():
    codebook, _ = fitted_codebook()
    assert MelCodebook(**codebook.config).centroids.shape == codebook.centroids.shape
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 4\)"):
        codebook.decode(torch.tensor([4]))
    with pytest.raises(ValueError, match="integer tensor"):
        codebook.decode(torch.tensor([0.5]))
    with pytest.raises(ValueError, match="num_codes"):
        MelCodebook(num_codes=1)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 8\)"):
        codebook.encode(torch.zeros(3, 5))


def test_prompt_layout():
    prompts = tokens.encode_prompts(["one", "six two"], text_length=4)
    assert prompts.tolist() == [[1, tokens.PAD, tokens.PAD, tokens.PAD, tokens.BEGIN_AUDIO],
                                [6, 2, tokens.PAD, tokens.PAD, tokens.BEGIN_AUDIO]]
    with pytest.raises(ValueError, match="at most 2"):
        tokens.encode_prompts(["seven seven seven"], text_length=2)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tokens.encode_prompts(["seven eleven"], text_length=2)


def test_training_batch_targets_only_the_audio_and_its_end():
    inputs, targets = tokens.training_batch(["one", "two"], [torch.tensor([5, 6, 7]), torch.tensor([9])], text_length=4)
    assert inputs.shape == targets.shape == (2, 4 + 1 + 3)
    a = tokens.AUDIO_OFFSET
    assert inputs[0].tolist()[4:] == [tokens.BEGIN_AUDIO, a + 5, a + 6, a + 7]
    assert targets[0].tolist() == [-1, -1, -1, -1, a + 5, a + 6, a + 7, tokens.END_AUDIO]
    assert targets[1].tolist() == [-1, -1, -1, -1, a + 9, tokens.END_AUDIO, -1, -1]
    assert inputs[1].tolist()[4:] == [tokens.BEGIN_AUDIO, a + 9, tokens.END_AUDIO, tokens.END_AUDIO]
    assert tokens.vocab_size(256) == a + 256
