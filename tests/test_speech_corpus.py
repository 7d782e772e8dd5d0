"""The spoken-digit texts, their held-out split, the text check and the eSpeak NG clips."""

import numpy as np
import pytest

from aigc_course.speech import corpus
from aigc_course.speech.corpus import (
    ALPHABET,
    DIGIT_WORDS,
    HELD_OUT_PAIRS,
    SAMPLE_RATE,
    EspeakNotFoundError,
    Speaker,
    check_text,
    check_words,
    digit_texts,
    digits_to_text,
    is_held_out,
    random_speakers,
    split_of,
    synthesize,
    synthesize_many,
    text_to_digits,
)
from tests.speech_helpers import requires_espeak


def test_alphabet_is_the_space_and_the_letters_of_the_digit_words():
    assert ALPHABET[0] == " " and len(ALPHABET) == 16
    assert set(ALPHABET[1:]) == set("".join(DIGIT_WORDS))


def test_digits_and_text_round_trip():
    assert digits_to_text([4, 2, 7]) == "four two seven"
    assert text_to_digits("four two seven") == [4, 2, 7]
    for bad in ([], [10], [True], [1.0]):
        with pytest.raises(ValueError, match="digits"):
            digits_to_text(bad)
    with pytest.raises(ValueError, match="digit words"):
        text_to_digits("four tw0")


def test_ten_held_out_pairs_one_per_first_word():
    assert len(HELD_OUT_PAIRS) == 10 and sorted(a for a, _ in HELD_OUT_PAIRS) == list(range(10))
    assert (1, 4) in HELD_OUT_PAIRS and is_held_out([9, 1, 4]) and not is_held_out([4, 1])
    assert split_of("one four") == "held_out" and split_of("four one") == "train" and split_of("one") == "train"


def test_digit_texts_fall_in_their_split_and_repeat_with_the_seed():
    train = digit_texts(300, split="train", seed=1)
    held_out = digit_texts(300, split="held_out", seed=1)
    assert all(split_of(t) == "train" for t in train)
    assert all(split_of(t) == "held_out" for t in held_out)
    assert {len(t.split()) for t in train} == {1, 2, 3, 4} and {len(t.split()) for t in held_out} == {2, 3, 4}
    assert train == digit_texts(300, split="train", seed=1) and train != digit_texts(300, split="train", seed=2)
    assert all(len(t.split()) <= 2 for t in digit_texts(50, max_digits=2))


def test_digit_texts_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        digit_texts(3, split="test")
    with pytest.raises(ValueError, match="n must"):
        digit_texts(-1)
    with pytest.raises(ValueError, match="max_digits"):
        digit_texts(3, max_digits=5)
    with pytest.raises(ValueError, match="max_digits >= 2"):
        digit_texts(3, split="held_out", max_digits=1)


def test_check_text_normalises_and_names_the_argument():
    assert check_text("  Four   TWO seven ") == "four two seven"
    assert check_text("tree") == "tree"  # letters of the alphabet, not necessarily digit words
    with pytest.raises(ValueError, match="text must not be empty"):
        check_text("   ")
    with pytest.raises(ValueError, match=r"text must be a str"):
        check_text(42)
    with pytest.raises(ValueError, match=r"prompt 'hello!' has characters outside the vocabulary: \['!', 'l'\]"):
        check_text("hello!", name="prompt")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        check_text("4 2")
    assert check_words(" One  two ") == "one two"
    with pytest.raises(ValueError, match=r"text 'tree' has words outside the vocabulary: \['tree'\]"):
        check_words("tree")
    with pytest.raises(ValueError, match="has 5 words; the model reads at most 4"):
        check_words("one two three four five")
    with pytest.raises(ValueError, match="prompt must not be empty"):
        check_words("", name="prompt")


def test_random_speakers_follow_the_recipe():
    speakers = random_speakers(200, corpus.JUDGE_SPEAKERS, seed=3)
    assert speakers == random_speakers(200, corpus.JUDGE_SPEAKERS, seed=3)
    assert {s.voice for s in speakers} <= set(corpus.JUDGE_SPEAKERS["voices"])
    assert all(130 <= s.speed <= 210 and 25 <= s.pitch <= 75 for s in speakers)
    assert Speaker("en-gb", 150, 40).arguments() == ["-v", "en-gb", "-s", "150", "-p", "40"]


def test_missing_synthesiser_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(corpus, "ESPEAK", "espeak-ng-not-installed-here")
    assert not corpus.espeak_available()
    with pytest.raises(EspeakNotFoundError, match="apt-get install espeak-ng"):
        synthesize("one")


@requires_espeak
def test_synthesize_gives_a_trimmed_clip_at_peak_0_9_and_repeats_exactly():
    clip = synthesize("four two seven")
    assert clip.dtype == np.float32 and clip.ndim == 1
    assert 0.5 < len(clip) / SAMPLE_RATE < 2.0
    assert np.abs(clip).max() == pytest.approx(0.9, abs=1e-6)
    assert np.array_equal(clip, synthesize("four two seven"))
    slow = synthesize("four two seven", Speaker(speed=120))
    assert len(slow) > 1.2 * len(clip)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        synthesize("4 2 7")


@requires_espeak
def test_synthesize_many_matches_one_at_a_time():
    texts = ["one", "two three"]
    speakers = [Speaker("en-gb", 160, 40), Speaker("en-us+f2", 180, 60)]
    many = synthesize_many(texts, speakers, workers=2)
    for clip, text, speaker in zip(many, texts, speakers, strict=True):
        assert np.array_equal(clip, synthesize(text, speaker))
    with pytest.raises(ValueError, match="one per text"):
        synthesize_many(texts, speakers[:1])
