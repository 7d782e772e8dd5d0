"""The shipped ``text-to-speech`` model judged by the shipped ``speech-recognizer``, side by side with real clips.

    python benchmarks/bench_text_to_speech.py [--n 300] [--threads 2]   # needs espeak-ng for the real clips

Table 1, the judge on real clips (eSpeak NG, fresh texts and speakers, never seen in training):
held-out texts in the recogniser's seventeen voices, and held-out and training texts in the
text-to-speech voice.

Table 2, generated clips: the fraction the judge reads as exactly their text (every word, in
order), for held-out texts (word pairs the model never heard) and training texts, at the
checkpoint's sampling settings and greedy. Two reference rows: real clips in the model's voice,
and the same real clips passed through the audio tokens and Griffin–Lim (the codec's ceiling:
what a perfect token model would score).

Table 3, spectrogram distance (:func:`aigc_course.speech.mel_distance`: mean absolute log-mel
difference after dynamic time warping): generated vs a real clip of the same text, against real
vs real of the same text (two speakers of the model's voice recipe) and real vs real of
different texts.

Targets (issue 18): >= 90 % of >= 300 generated clips recognised as their text; the judge >= 97 %
on held-out real clips.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import aigc_course
from aigc_course import pretrained
from aigc_course.speech import (
    JUDGE_SPEAKERS,
    TTS_SPEAKERS,
    digit_texts,
    load_speech_recognizer,
    mel_distance,
    random_speakers,
    recognition_accuracy,
    synthesize_many,
)
from aigc_course.speech.features import log_mel


def row(name: str, values: list) -> str:
    return f"| {name} | " + " | ".join(values) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300, help="clips per row (>= 300 for the issue's targets)")
    parser.add_argument("--pairs", type=int, default=100, help="clip pairs per distance row")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(args.threads, 2)))
    aigc_course.seed_everything(args.seed)
    n, seed = args.n, args.seed
    pipe = pretrained.load("text-to-speech", device="cpu")
    judge = load_speech_recognizer("cpu")

    texts = {split: digit_texts(n, split=split, seed=1000 + seed + i) for i, split in enumerate(("held_out", "train"))}
    tts_speakers = random_speakers(n, TTS_SPEAKERS, seed=2000 + seed)
    real = {split: synthesize_many(texts[split], tts_speakers) for split in texts}
    judge_voices = synthesize_many(texts["held_out"], random_speakers(n, JUDGE_SPEAKERS, seed=3000 + seed))

    print(f"\nTable 1. The judge on real eSpeak NG clips ({n} each)\n")
    print("| real clips | texts | judge accuracy |\n|---|---|---|")
    print(row("17 voices (the judge's recipe)", ["held-out", f"{recognition_accuracy(judge_voices, texts['held_out'], judge):.1%}"]))
    for split in texts:
        print(row("en-us (the model's voice)", [split.replace("_", "-"), f"{recognition_accuracy(real[split], texts[split], judge):.1%}"]))

    print(f"\nTable 2. Generated clips read by the judge ({n} each)\n")
    print("| clips | texts | judge accuracy | seconds per clip (tokens + Griffin-Lim) |\n|---|---|---|---|")
    sampling = pipe.sampling
    settings = [(f"model, temperature {sampling['temperature']:g}" + (f", top-k {sampling['top_k']}" if sampling.get("top_k") else ""), {}),
                ("model, greedy", {"temperature": 0.0})]
    generated = {}
    for label, options in settings:
        for split in texts:
            start = time.perf_counter()
            codes = pipe.generate_tokens(texts[split], seed=seed, **options)
            middle = time.perf_counter()
            waves = pipe.vocode(codes).cpu()
            end = time.perf_counter()
            generated.setdefault(label, {})[split] = waves
            acc = recognition_accuracy(waves, texts[split], judge)
            print(row(label, [split.replace("_", "-"), f"{acc:.1%}",
                              f"{(middle - start) / n:.3f} + {(end - middle) / n:.3f}"]))
    for split in texts:
        ceiling = pipe.vocode([pipe.codebook.encode(log_mel(c)) for c in real[split]]).cpu()
        print(row("real clips -> audio tokens -> Griffin-Lim", [split.replace("_", "-"),
                                                               f"{recognition_accuracy(ceiling, texts[split], judge):.1%}", "-"]))

    p = min(args.pairs, n)
    other = synthesize_many(texts["held_out"][:p], random_speakers(p, TTS_SPEAKERS, seed=4000 + seed))
    model_label = settings[0][0]
    rows = [
        ("generated vs real, same text", [mel_distance(generated[model_label]["held_out"][i], real["held_out"][i]) for i in range(p)]),
        ("real vs real, same text (another speed and pitch)", [mel_distance(other[i], real["held_out"][i]) for i in range(p)]),
        ("real vs real, different texts", [mel_distance(other[i], real["held_out"][(i + 1) % p]) for i in range(p)]),
    ]
    print(f"\nTable 3. Spectrogram distance, held-out texts ({p} pairs; mean |log-mel difference| after time warping)\n")
    print("| pair | mean | median |\n|---|---|---|")
    for name, values in rows:
        print(row(name, [f"{np.mean(values):.3f}", f"{np.median(values):.3f}"]))


if __name__ == "__main__":
    main()
