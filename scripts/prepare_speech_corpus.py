"""Prepare the speech corpora of chapter 2.3.3 with eSpeak NG (repository tooling).

    python scripts/prepare_speech_corpus.py            # every corpus, into _build/speech/
    python scripts/prepare_speech_corpus.py tts-train  # one of them

Each corpus is a list of texts of spoken digits (:func:`aigc_course.speech.corpus.digit_texts`),
read aloud by ``espeak-ng`` with a speaker drawn from a recipe, and stored as log-mel spectrograms
(:func:`aigc_course.speech.features.log_mel`) in one safetensors file: ``frames`` (all clips'
frames, float16, one after another) and ``offsets`` (where each clip starts), with the texts,
speakers and settings in its metadata. The training scripts call :func:`load_corpus`, which
prepares a missing corpus first. Nothing here is shipped; the checkpoints record which corpus
trained them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from aigc_course.speech.corpus import (
    ESPEAK,
    JUDGE_SPEAKERS,
    TTS_SPEAKERS,
    digit_texts,
    random_speakers,
    synthesize_many,
)
from aigc_course.speech.features import MelConfig, log_mel

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT / "_build" / "speech"

#: name -> (split of texts, number of clips, speaker recipe, seed for texts and speakers)
CORPORA = {
    "tts-train": ("train", 8000, "tts", 1),
    "tts-held-out": ("held_out", 400, "tts", 2),
    "judge-train": ("train", 6000, "judge", 3),
    "judge-held-out": ("held_out", 1000, "judge", 4),
}
RECIPES = {"tts": TTS_SPEAKERS, "judge": JUDGE_SPEAKERS}


def espeak_version() -> str:
    return subprocess.run([ESPEAK, "--version"], capture_output=True, text=True, check=True).stdout.strip()


def prepare(name: str, folder: Path = DEFAULT_DIR, workers: int = 8) -> Path:
    """Synthesise corpus ``name`` and write ``<folder>/<name>.safetensors``; returns the path."""
    split, n, recipe, seed = CORPORA[name]
    texts = digit_texts(n, split=split, seed=seed)
    speakers = random_speakers(n, RECIPES[recipe], seed=seed)
    config = MelConfig()
    start = time.perf_counter()
    clips = synthesize_many(texts, speakers, workers=workers)
    frames = [log_mel(c, config) for c in clips]
    offsets = torch.tensor([0] + [len(f) for f in frames]).cumsum(0)
    metadata = {
        "texts": json.dumps(texts), "speakers": json.dumps([s.__dict__ for s in speakers]),
        "split": split, "recipe": json.dumps(RECIPES[recipe]), "mel_config": json.dumps(config.to_dict()),
        "espeak": espeak_version(), "seconds_of_audio": f"{sum(len(c) for c in clips) / config.sample_rate:.1f}",
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.safetensors"
    tmp = path.with_suffix(".tmp")
    save_file({"frames": torch.cat(frames).half(), "offsets": offsets}, str(tmp), metadata=metadata)
    tmp.replace(path)
    print(f"{name}: {n} clips, {metadata['seconds_of_audio']} s of audio, {time.perf_counter() - start:.0f} s")
    return path


def load_corpus(name: str, folder: Path = DEFAULT_DIR) -> dict:
    """``{"frames": [(T_i, n_mels) float32, ...], "texts": [...], "speakers": [...], "metadata": {...}}``,
    preparing the corpus first if its file is missing."""
    path = folder / f"{name}.safetensors"
    if not path.exists():
        prepare(name, folder)
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(path))
    offsets = tensors["offsets"].tolist()
    frames = tensors["frames"].float()
    clips = [frames[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    return {"frames": clips, "texts": json.loads(metadata["texts"]), "speakers": json.loads(metadata["speakers"]),
            "metadata": metadata}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"corpora to prepare, of {', '.join(CORPORA)} (default: all)")
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--workers", type=int, default=8, help="espeak-ng processes at once")
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in CORPORA]
    if unknown:
        parser.error(f"unknown corpus {unknown[0]!r}; choose from {', '.join(CORPORA)}")
    for name in args.names or CORPORA:
        prepare(name, args.out, args.workers)


if __name__ == "__main__":
    main()
