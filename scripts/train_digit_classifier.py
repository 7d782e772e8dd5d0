"""Train the digit classifier used to score generated digits; publish ``digits-classifier``.

Trains on the fixed train split of ``aigc_course.data.load_digits`` with one-pixel random
shifts as augmentation, and records the test accuracy in the checkpoint's config.
Run: ``.venv/bin/python scripts/train_digit_classifier.py`` (about a minute on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from publishing import publish

from aigc_course import seed_everything
from aigc_course.data import load_digits
from aigc_course.metrics.digits import DigitClassifier
from aigc_course.training import fit


def random_shift(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by up to one pixel in each direction (zero padding)."""
    padded = F.pad(images, (1, 1, 1, 1))
    dx = torch.randint(0, 3, (len(images),), generator=generator)
    dy = torch.randint(0, 3, (len(images),), generator=generator)
    return torch.stack([padded[i, :, dy[i] : dy[i] + 8, dx[i] : dx[i] + 8] for i in range(len(images))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    generator = seed_everything(args.seed)
    data = load_digits()
    model = DigitClassifier(width=32, dropout=0.25)
    config = {"model": model.config}
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.steps)

    def loss_fn(m, step):
        idx = torch.randint(len(data.x_train), (args.batch_size,), generator=generator)
        x = random_shift(data.x_train[idx], generator)
        return F.cross_entropy(m(x), data.y_train[idx])

    start = time.perf_counter()
    fit(model, optimizer, loss_fn, args.steps, scheduler=scheduler, desc="digit classifier")
    seconds = time.perf_counter() - start
    with torch.no_grad():
        test_acc = float((model(data.x_test).argmax(1) == data.y_test).float().mean())
        train_acc = float((model(data.x_train).argmax(1) == data.y_train).float().mean())
    print(f"train accuracy {train_acc:.4f}, test accuracy {test_acc:.4f}, {seconds:.0f} s")
    if test_acc < 0.97:
        raise SystemExit(f"test accuracy {test_acc:.4f} is below the 0.97 target; not publishing")
    config.update(
        steps=args.steps, batch_size=args.batch_size, seed=args.seed,
        data="sklearn digits / 16, load_digits(test_size=0.2, seed=0): 1437 train, 360 test",
        train_accuracy=round(train_acc, 4), test_accuracy=round(test_acc, 4),
        train_seconds=round(seconds, 1),
    )
    entry = publish(
        "digits-classifier", model.state_dict(), config,
        builder="aigc_course.metrics.digits:DigitClassifier",
        description="CNN digit classifier that scores generated 8x8 digits (accuracy, FDD).",
        script="scripts/train_digit_classifier.py",
    )
    print(entry)


if __name__ == "__main__":
    main()
