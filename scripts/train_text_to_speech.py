"""Train the text-to-speech model of chapter 2.3.3 and publish ``text-to-speech``.

    python scripts/train_text_to_speech.py [--steps 2000] [--batch-size 24] [--threads 2] [--no-publish]

1. **Data.** The eSpeak NG corpus ``tts-train``: 8000 clips of *training* texts (one to four
   digits, no held-out word pair), one voice (``en-us``), speed 150-190 words per minute, pitch
   40-60 (``scripts/prepare_speech_corpus.py`` makes it if it is missing).
2. **Audio tokens.** k-means with ``num_codes`` centroids on the corpus's log-mel frames
   (:class:`aigc_course.speech.MelCodebook`); every clip becomes a sequence of token ids.
3. **The GPT** (:class:`aigc_course.gpt.GPT`) learns the next token of
   ``text | <audio> tokens </audio>`` (:mod:`aigc_course.speech.tokens`), loss on the audio only,
   with AdamW, warm-up + cosine learning rate and batches of clips of similar length.
4. **Evaluation.** The shipped recogniser (``speech-recognizer``, trained on real clips only)
   reads generated clips of held-out texts; the accuracy, the codec's own ceiling (real clips
   through the codebook and Griffin–Lim) and the wall time and machine load go into the
   checkpoint's config.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import torch
from prepare_speech_corpus import CORPORA, load_corpus
from publishing import publish

import aigc_course
from aigc_course.gpt import GPT, GPTConfig
from aigc_course.speech import tokens
from aigc_course.speech.codec import MelCodebook
from aigc_course.speech.corpus import MAX_DIGITS, digit_texts
from aigc_course.speech.features import MelConfig
from aigc_course.speech.pipelines import TextToSpeechPipeline
from aigc_course.training import fit

TEXT_LENGTH = MAX_DIGITS  # words
CONFIG = {
    "num_codes": 256,
    "model": {"n_layer": 4, "n_head": 4, "n_embd": 128, "dropout": 0.1},
    "max_frames": 100,  # 2 s at 50 frames a second; the longest training clip is about 1.7 s
    "steps": 2000, "batch_size": 24, "lr": 2e-3, "weight_decay": 0.05, "warmup": 200, "seed": 0,
    "sampling": {"temperature": 0.8, "top_k": None},
}


def bucketed_batches(lengths: list[int], batch_size: int, generator: torch.Generator, pool: int = 8):
    """Indices of a random batch of clips of similar length (drawn from one of the length-sorted pools)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    size = batch_size * pool
    pools = [order[i : i + size] for i in range(0, len(order), size)]
    weights = torch.tensor([len(p) for p in pools], dtype=torch.float)

    def draw() -> list[int]:
        chosen = pools[int(torch.multinomial(weights, 1, generator=generator))]
        picks = torch.randint(len(chosen), (batch_size,), generator=generator)
        return [chosen[i] for i in picks.tolist()]

    return draw


def lr_factor(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    return factor


def evaluate(pipe: TextToSpeechPipeline, held_out: dict, n: int = 100, seed: int = 0) -> dict:
    """Judge accuracy on generated clips of ``n`` held-out and ``n`` training texts, and the codec ceiling."""
    from aigc_course.speech.recognizer import load_speech_recognizer, recognition_accuracy

    recognizer = load_speech_recognizer("cpu")
    out = {}
    for split in ("held_out", "train"):
        texts = digit_texts(n, split=split, seed=100 + seed)
        waves = pipe(texts, seed=seed).cpu()
        out[f"judge_accuracy_{split}_{n}"] = round(recognition_accuracy(waves, texts, recognizer), 4)
    real = held_out["frames"][:n]
    ceiling = pipe.vocode([pipe.codebook.encode(f) for f in real]).cpu()
    out[f"judge_accuracy_codec_ceiling_{n}"] = round(recognition_accuracy(ceiling, held_out["texts"][:n], recognizer), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=CONFIG["steps"])
    parser.add_argument("--batch-size", type=int, default=CONFIG["batch_size"])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (at most 2 on the course machine)")
    parser.add_argument("--no-publish", action="store_true")
    parser.add_argument("--no-eval", action="store_true", help="skip the judge evaluation (no recogniser yet)")
    parser.add_argument("--checkpoint-dir", default=None)
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(args.threads, 2)))
    cfg = {**CONFIG, "steps": args.steps, "batch_size": args.batch_size}
    generator = aigc_course.seed_everything(cfg["seed"])
    load_before, start, cpu_start = os.getloadavg(), time.perf_counter(), time.process_time()

    train, held_out = load_corpus("tts-train"), load_corpus("tts-held-out")
    mel = MelConfig()
    codebook = MelCodebook(cfg["num_codes"], mel.n_mels, mel.n_fft).fit(torch.cat(train["frames"]), mel, cfg["seed"])
    keep = [i for i, f in enumerate(train["frames"]) if len(f) <= cfg["max_frames"]]
    codes = [codebook.encode(train["frames"][i]) for i in keep]
    texts = [train["texts"][i] for i in keep]
    codec_seconds = time.perf_counter() - start
    print(f"codebook: {cfg['num_codes']} codes, {len(codes)} clips, {codec_seconds:.0f} s")

    model = GPT(GPTConfig(vocab_size=tokens.vocab_size(cfg["num_codes"]),
                          block_size=TEXT_LENGTH + 1 + cfg["max_frames"], **cfg["model"]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"],
                                  betas=(0.9, 0.98))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg["warmup"], cfg["steps"]))
    draw = bucketed_batches([len(c) for c in codes], cfg["batch_size"], generator)

    def loss_fn(m: GPT, step: int) -> torch.Tensor:
        idx = draw()
        inputs, targets = tokens.training_batch([texts[i] for i in idx], [codes[i] for i in idx], TEXT_LENGTH)
        return m(inputs, targets)[1]

    history = fit(model, optimizer, loss_fn, cfg["steps"], grad_clip=1.0, scheduler=scheduler, desc="text-to-speech")
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    load_after = os.getloadavg()
    config = {
        "model": model.config.to_dict(), "codebook": codebook.config, "text_length": TEXT_LENGTH,
        "max_frames": cfg["max_frames"], "mel": mel.to_dict(), "sampling": cfg["sampling"],
        "training": {**{k: cfg[k] for k in ("steps", "batch_size", "lr", "weight_decay", "warmup", "seed")},
                     "final_loss_mean_last_100": round(sum(history.loss[-100:]) / 100, 4),
                     "seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1), "codebook_seconds": round(codec_seconds, 1),
                     "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                     "load_average_before": [round(x, 2) for x in load_before],
                     "load_average_after": [round(x, 2) for x in load_after]},
        "data": {"corpus": "tts-train", "clips": CORPORA["tts-train"][1], "clips_used": len(codes),
                 "espeak": train["metadata"]["espeak"], "recipe": train["metadata"]["recipe"]},
    }
    pipe = TextToSpeechPipeline(model.eval(), codebook, config)
    if not args.no_eval:
        config["metrics"] = evaluate(pipe, held_out)
        print(config["metrics"])
    print(f"trained in {seconds:.0f} s wall, {cpu_seconds:.0f} s CPU")
    if not args.no_publish:
        tensors = {**model.state_dict(), **{f"codebook.{k}": v for k, v in codebook.state_dict().items()}}
        entry = publish("text-to-speech", tensors, config, builder="aigc_course.speech.pipelines:TextToSpeechPipeline",
                        description="GPT over text and k-means audio tokens, with Griffin-Lim: spoken digit strings",
                        script="scripts/train_text_to_speech.py", checkpoint_dir=args.checkpoint_dir)
        print(f"published text-to-speech: {entry['bytes']} bytes")


if __name__ == "__main__":
    main()
