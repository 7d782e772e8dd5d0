"""Smoke-test an installed ``aigc-course``: every module imports, every checkpoint loads and runs.

Run by ``scripts/release.py test-wheel`` with the fresh virtual environment's Python, in
isolated mode (``python -I``) from an empty folder, so the repository is not on the path and
the package imported is the installed wheel. It imports every module of the package (so none
needs a package the wheel does not declare), loads every checkpoint of
``pretrained.available()`` on the CPU (each is hash-checked on load) and makes one tiny call of
each. A builder without a call in :data:`CALLS` is an error: add one when a checkpoint's class
is new.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
import sys
import time
from pathlib import Path

import torch

import aigc_course
from aigc_course import pretrained


def _images(x, n: int, channels: int | None = None) -> str:
    assert isinstance(x, torch.Tensor) and x.ndim == 4 and len(x) == n, tuple(getattr(x, "shape", ()))
    assert channels is None or x.shape[1] == channels, tuple(x.shape)
    assert torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1, "images must lie in [0, 1]"
    return f"images {tuple(x.shape)}"


def _clips(x, n: int, frames: int) -> str:
    assert isinstance(x, torch.Tensor) and x.ndim == 5 and x.shape[:3] == (n, frames, 3), tuple(getattr(x, "shape", ()))
    assert torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1, "clips must lie in [0, 1]"
    return f"clips {tuple(x.shape)}"


def _points(x, n: int) -> str:
    assert isinstance(x, torch.Tensor) and tuple(x.shape) == (n, 2) and torch.isfinite(x).all(), x
    return f"points {tuple(x.shape)}"


def _text(out) -> str:
    assert isinstance(out, str) and out, out
    return f"text {out[:30]!r}"


def _classify(model) -> str:
    """The digit classifier on the first 100 test digits (read from scikit-learn, installed)."""
    from aigc_course.data import load_digits

    split = load_digits()
    with torch.no_grad():
        logits = model(split.x_test[:100])
    accuracy = (logits.argmax(1) == split.y_test[:100]).float().mean().item()
    assert accuracy > 0.9, f"accuracy {accuracy:.2f}: the weights did not load"
    return f"accuracy {accuracy:.2f} on 100 test digits"


def _char_lstm(model) -> str:
    return _text(model.generate("def ", 8, temperature=0.0))


def _reward(model) -> str:
    from aigc_course.alignment.chat import chat_tokenizer
    scores = model.score(["add 12 and 30"], ["42"], chat_tokenizer())
    assert scores.shape == (1,) and torch.isfinite(scores).all(), scores
    return f"reward {scores.tolist()}"


def _waves(x, n: int) -> str:
    assert isinstance(x, torch.Tensor) and x.ndim == 2 and len(x) == n and x.shape[1] > 0, tuple(getattr(x, "shape", ()))
    assert torch.isfinite(x).all() and x.abs().max() <= 1, "waveforms must lie in [-1, 1]"
    return f"waveforms {tuple(x.shape)}"


def _recognizer(model) -> str:
    """The speech recogniser on one second of silence (log-mel at its floor): CTC log-probabilities."""
    frames = torch.full((1, 50, model.n_mels), -9.0)
    with torch.no_grad():
        log_probs = model(frames)
    assert log_probs.shape == (1, 25, 11) and torch.allclose(log_probs.exp().sum(-1), torch.ones(1, 25)), log_probs.shape
    return f"log-probabilities {tuple(log_probs.shape)}, read as {model.read(frames, torch.tensor([50]))}"


def _scenes(n: int):
    """Real captioned scenes, drawn by the package's own renderer."""
    from aigc_course.data import captioned_scenes
    return captioned_scenes(n, seed=0)


def _captions(out, n: int) -> str:
    assert isinstance(out, list) and len(out) == n and all(isinstance(c, str) and c for c in out), out
    return f"captions {out}"


def _scene_judge(model) -> str:
    from aigc_course.data.scenes import canonical_attributes
    images, _, attributes = _scenes(4)
    read = model.predict(images)
    assert len(read) == 4 and all(isinstance(r, dict) for r in read), read
    right = sum({k: v for k, v in r.items() if k != "count"} == canonical_attributes(a)
                for r, a in zip(read, attributes, strict=True))
    return f"read {right}/4 real scenes exactly"


def _scene_clip(model) -> str:
    images, captions, _ = _scenes(4)
    with torch.no_grad():
        sim = model.encode_images(images) @ model.encode_texts(captions).T
    assert sim.shape == (4, 4) and torch.isfinite(sim).all(), sim
    return f"similarities {tuple(sim.shape)}"


def _vae(model) -> str:
    return _images(model.sample(2, seed=0), 2, 1)


#: builder -> one tiny call on the loaded object, returning what it made (for the log).
CALLS = {
    "aigc_course.alignment.pipelines:ChatPipeline": lambda p: _text(p("add 12 and 30")),
    "aigc_course.alignment.reward:RewardModel": _reward,
    "aigc_course.captioning.pipelines:CaptionPipeline": lambda p: _captions(p(_scenes(2)[0]), 2),
    "aigc_course.autoregressive:PixelGPTPipeline": lambda p: _images(p.sample(1, seed=0), 1, 1),
    "aigc_course.diffusion.pipelines:Diffusion2DPipeline": lambda p: _points(p.sample(4, num_inference_steps=3, seed=0), 4),
    "aigc_course.diffusion.pipelines:TextToImagePipeline": lambda p: _images(
        p(["a red circle above a blue square", "a small green cross on the left"], num_inference_steps=2, seed=0), 2, 3),
    "aigc_course.diffusion.video_pipelines:TextToVideoPipeline": lambda p: _clips(
        p(["a small red circle moving left", "a large blue square moving up"], num_inference_steps=2, seed=0), 2, 8),
    "aigc_course.diffusion.pipelines:DigitsDDPMPipeline": lambda p: _images(
        p([3, 7], num_inference_steps=2, sampler="ddim", guidance_scale=2.0, seed=0), 2, 1),
    "aigc_course.gan.pipelines:ConditionalGANPipeline": lambda p: _images(p([1, 7], seed=0), 2, 1),
    "aigc_course.gan.pipelines:GANSampler": lambda p: _points(p.sample(8, seed=0), 8),
    "aigc_course.gpt:GPTPipeline": lambda p: _text(p("def", max_new_tokens=6, seed=0)),
    "aigc_course.metrics.digits:DigitClassifier": _classify,
    "aigc_course.metrics.scenes:SceneCLIP": _scene_clip,
    "aigc_course.metrics.scenes:SceneJudge": _scene_judge,
    "aigc_course.rnn:CharLSTM": _char_lstm,
    "aigc_course.speech.pipelines:TextToSpeechPipeline": lambda p: _waves(p(["one two", "nine"], seed=0), 2),
    "aigc_course.speech.recognizer:SpeechRecognizer": _recognizer,
    "aigc_course.vae:VAE": _vae,
}


def main() -> int:
    here = Path(aigc_course.__file__).resolve()
    assert Path(sys.prefix).resolve() in here.parents, f"aigc_course imported from {here}, not from {sys.prefix}"
    installed = importlib.metadata.version("aigc-course")
    assert installed == aigc_course.__version__, (installed, aigc_course.__version__)
    print(f"aigc-course {installed} from {here.parent}")

    modules = sorted(m.name for m in pkgutil.walk_packages(aigc_course.__path__, "aigc_course.")
                     if not m.name.endswith("__main__"))
    for name in modules:
        importlib.import_module(name)
    print(f"imported {len(modules)} modules")

    names = pretrained.available()
    assert names, "no shipped checkpoints"
    missing = sorted({pretrained.info(n)["builder"] for n in names} - set(CALLS))
    if missing:
        raise SystemExit(f"no tiny call for the builders {missing}: add one to CALLS in scripts/wheel_smoke.py")
    torch.manual_seed(0)
    for name in names:
        start = time.perf_counter()
        obj = pretrained.load(name, device="cpu")
        result = CALLS[pretrained.info(name)["builder"]](obj)
        print(f"{name:<20} {time.perf_counter() - start:5.2f} s  {result}")
    print(f"{len(names)} checkpoints loaded and called")
    # a model card needs LICENSE-DATA.md, which the wheel carries among its licence files
    from aigc_course.interop import model_card

    card = model_card("digits-ddpm")
    assert "Licence:" in card, card[:500]
    print(f"model card of digits-ddpm: {len(card.splitlines())} lines, with its data licence")
    return 0


if __name__ == "__main__":
    sys.exit(main())
