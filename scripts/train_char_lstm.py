"""Train the Chapter 1.1.2 character LSTM and publish it as ``char-lstm``.

Same data as the n-gram baseline (``python_corpus()``: the standard library's source,
split by file); the script records the config, the split and the held-out bits per
character in the checkpoint's config.json, next to the best n-gram's on the same split.
Run: ``.venv/bin/python scripts/train_char_lstm.py`` (about 6 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict

import torch
from publishing import publish

from aigc_course import seed_everything
from aigc_course.classic import NGramLanguageModel
from aigc_course.data import encode_chars, python_corpus
from aigc_course.rnn import CharLSTM, CharLSTMConfig, random_windows
from aigc_course.training import fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    generator = seed_everything(args.seed)
    corpus = python_corpus()
    train_ids = encode_chars(corpus.train)
    config = CharLSTMConfig(hidden_size=args.hidden)
    model = CharLSTM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=args.steps, pct_start=0.05)

    def loss_fn(m, step):
        x, y = random_windows(train_ids, args.batch_size, args.seq_len, generator)
        return m.loss(x, y)

    start = time.perf_counter()
    history = fit(model, optimizer, loss_fn, args.steps, grad_clip=1.0, scheduler=scheduler, desc="char LSTM")
    seconds = time.perf_counter() - start
    valid_bpc, test_bpc = model.bits_per_char(corpus.valid), model.bits_per_char(corpus.test)
    ngram_bpc = {n: NGramLanguageModel(n).fit(corpus.train).bits_per_char(corpus.test) for n in range(1, 6)}
    best_n = min(ngram_bpc, key=ngram_bpc.get)
    print(f"LSTM: valid {valid_bpc:.4f} bpc, test {test_bpc:.4f} bpc after {seconds:.0f} s")
    print(f"best n-gram (n={best_n}, Kneser-Ney): test {ngram_bpc[best_n]:.4f} bpc")
    record = {
        "model": asdict(config),
        "training": vars(args) | {"seconds": round(seconds, 1), "final_train_loss_nats": round(sum(history.loss[-50:]) / 50, 4)},
        "data": {"corpus": "python_corpus(max_chars=2_000_000)", "source": corpus.source,
                 "chars": {s: len(corpus.split(s)) for s in ("train", "valid", "test")},
                 "test_files": corpus.files["test"]},
        "valid_bits_per_char": round(valid_bpc, 4),
        "test_bits_per_char": round(test_bpc, 4),
        "ngram_kneser_ney_test_bits_per_char": {str(n): round(b, 4) for n, b in ngram_bpc.items()},
    }
    entry = publish(
        "char-lstm", model.state_dict(), record, builder="aigc_course.rnn:CharLSTM",
        description="Character-level LSTM on the Python standard library (Chapter 1.1.2).",
        script="scripts/train_char_lstm.py",
    )
    print(entry)


if __name__ == "__main__":
    main()
