"""The judge: CTC decoding, the recogniser's shapes, the spectrogram distance, and the shipped
checkpoint's accuracy on fresh real clips of held-out texts."""

import numpy as np
import pytest
import torch

from aigc_course.speech.corpus import (
    JUDGE_SPEAKERS,
    digit_texts,
    random_speakers,
    synthesize,
    synthesize_many,
)
from aigc_course.speech.recognizer import (
    BLANK,
    SpeechRecognizer,
    ctc_greedy_decode,
    load_speech_recognizer,
    mel_distance,
    pad_frames,
    recognition_accuracy,
    transcribe,
    trim_padding,
)
from tests.speech_helpers import requires_espeak


def one_hot_log_probs(labels: list[int], classes: int = 11) -> torch.Tensor:
    return torch.log(torch.nn.functional.one_hot(torch.tensor(labels), classes).float() * 0.99 + 0.001)[None]


def test_greedy_ctc_merges_repeats_then_drops_blanks():
    b = BLANK
    assert ctc_greedy_decode(one_hot_log_probs([b, 4, 4, b, 4, 2, 2, b, 7])) == [[4, 4, 2, 7]]
    assert ctc_greedy_decode(one_hot_log_probs([b, b, b])) == [[]]
    batch = torch.cat([one_hot_log_probs([1, 1, 2, 3]), one_hot_log_probs([5, b, 5, 6])])
    assert ctc_greedy_decode(batch, torch.tensor([2, 3])) == [[1], [5, 5]]
    with pytest.raises(ValueError, match=r"shape \(B, T, C\)"):
        ctc_greedy_decode(torch.zeros(4, 11))


def test_recogniser_shapes_and_output_lengths():
    model = SpeechRecognizer(channels=16, num_blocks=1).eval()
    for frames in (7, 8, 45):
        out = model(torch.randn(2, frames, 80))
        assert out.shape == (2, int(SpeechRecognizer.output_lengths(torch.tensor(frames))), 11)
        assert torch.allclose(out.exp().sum(-1), torch.ones(2, out.shape[1]), atol=1e-5)
    with pytest.raises(ValueError, match=r"features must have shape \(B, T, 80\)"):
        model(torch.randn(2, 10, 64))
    assert SpeechRecognizer(**model.config).config == model.config


def test_recogniser_learns_two_clips():
    torch.manual_seed(0)
    model = SpeechRecognizer(channels=32, num_blocks=1, dropout=0.0)
    frames = [torch.randn(30, 80), torch.randn(24, 80)]
    batch, lengths = pad_frames(frames)
    texts = ["one two", "nine"]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        optimizer.zero_grad()
        loss = model.loss(batch, lengths, texts)
        loss.backward()
        optimizer.step()
    assert model.eval().read(batch, lengths) == texts


def test_trim_padding_and_pad_frames():
    assert np.array_equal(trim_padding(torch.tensor([0.0, 0.5, -0.2, 0.0, 0.0])), np.array([0.0, 0.5, -0.2], np.float32))
    batch, lengths = pad_frames([torch.zeros(3, 80), torch.zeros(5, 80)])
    assert batch.shape == (2, 5, 80) and lengths.tolist() == [3, 5]


def test_mel_distance_is_zero_for_a_clip_and_small_for_a_slower_copy():
    t = np.arange(16000) / 16000
    sweep = (0.5 * np.sin(2 * np.pi * (200 + 1500 * t) * t)).astype(np.float32)
    slower = np.interp(np.arange(0, 16000, 0.8), np.arange(16000), sweep).astype(np.float32)  # 25 % longer
    noise = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.3
    assert mel_distance(sweep, sweep) == pytest.approx(0.0, abs=1e-6)
    assert mel_distance(sweep, slower) < 0.5 * mel_distance(sweep, noise)


@requires_espeak
def test_shipped_recogniser_reads_97_percent_of_fresh_held_out_clips():
    texts = digit_texts(120, split="held_out", seed=1234)
    clips = synthesize_many(texts, random_speakers(len(texts), JUDGE_SPEAKERS, seed=1234))
    recognizer = load_speech_recognizer("cpu")
    assert recognition_accuracy(clips, texts, recognizer) >= 0.97
    padded = torch.zeros(2, max(len(c) for c in clips[:2]))
    for row, clip in enumerate(clips[:2]):
        padded[row, : len(clip)] = torch.from_numpy(clip)
    assert transcribe(padded, recognizer) == transcribe(clips[:2], recognizer)  # zero padding changes nothing


@requires_espeak
def test_recognition_accuracy_checks_its_arguments():
    clip = synthesize("one")
    with pytest.raises(ValueError, match="one text per clip"):
        recognition_accuracy([clip], ["one", "two"])
    with pytest.raises(ValueError, match=r"texts\[0\]"):
        recognition_accuracy([clip], ["1"])
    with pytest.raises(ValueError, match="at least one waveform"):
        transcribe([])
