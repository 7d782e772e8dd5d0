"""Text-to-speech for spoken digit strings (book 2.3.3), one module per idea.

* :mod:`~aigc_course.speech.corpus` -- the texts (digit words, held-out word pairs) and the real
  clips, synthesised by eSpeak NG;
* :mod:`~aigc_course.speech.features` -- waveform -> log-mel spectrogram -> waveform (librosa);
* :mod:`~aigc_course.speech.codec` -- audio tokens: k-means prototypes of log-mel frames;
* :mod:`~aigc_course.speech.tokens` -- one token sequence for a text and its speech;
* :mod:`~aigc_course.speech.pipelines` -- the shipped ``text-to-speech`` pipeline (a GPT);
* :mod:`~aigc_course.speech.recognizer` -- the judge: a CTC speech recogniser trained on real clips.
"""

from aigc_course.speech.codec import MelCodebook
from aigc_course.speech.corpus import (
    ALPHABET,
    DIGIT_WORDS,
    HELD_OUT_PAIRS,
    JUDGE_SPEAKERS,
    SAMPLE_RATE,
    TTS_SPEAKERS,
    EspeakNotFoundError,
    Speaker,
    check_text,
    check_words,
    digit_texts,
    digits_to_text,
    espeak_available,
    random_speakers,
    split_of,
    synthesize,
    synthesize_many,
    text_to_digits,
)
from aigc_course.speech.features import MelConfig, log_mel, mel_filterbank, mel_to_audio
from aigc_course.speech.pipelines import TextToSpeechPipeline
from aigc_course.speech.recognizer import (
    SpeechRecognizer,
    ctc_greedy_decode,
    load_speech_recognizer,
    mel_distance,
    recognition_accuracy,
    transcribe,
)

__all__ = [
    "ALPHABET", "DIGIT_WORDS", "HELD_OUT_PAIRS", "JUDGE_SPEAKERS", "SAMPLE_RATE", "TTS_SPEAKERS",
    "EspeakNotFoundError", "MelCodebook", "MelConfig", "Speaker", "SpeechRecognizer", "TextToSpeechPipeline",
    "check_text", "check_words", "ctc_greedy_decode", "digit_texts", "digits_to_text", "espeak_available", "load_speech_recognizer",
    "log_mel", "mel_distance", "mel_filterbank", "mel_to_audio", "random_speakers", "recognition_accuracy",
    "split_of", "synthesize", "synthesize_many", "text_to_digits", "transcribe",
]
