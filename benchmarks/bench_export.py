"""Chapter 7.2 benchmark: ONNX export time and onnxruntime against eager PyTorch.

    .venv/bin/python benchmarks/bench_export.py                # every table (about 1-2 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_export.py --no-dynamo    # skip the slow torch.export exporter

Models: the shipped ``code-gpt`` (full forward, ``idx (B, T) -> logits``) and the
``digits-ddpm`` U-Net (one denoising call). Timings are the fastest of interleaved repeats
(:func:`aigc_course.interop.fastest_seconds`), both runtimes on the CPU with the same thread
count, ratios measured side by side in this one run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import time
import warnings

import torch

from aigc_course import pretrained
from aigc_course.interop import OnnxModel, export_denoiser, export_gpt, fastest_seconds
from aigc_course.interop.onnx import _Logits


def export_times(gpt, unet, dynamo: bool) -> None:
    print("\nExport time (seconds)")
    print(f"{'model':<14}{'TorchScript exporter':>22}{'torch.export (dynamo)':>24}")
    for name, fn, module, args, shapes in [
        ("code-gpt", lambda: export_gpt(gpt), _Logits(gpt), (torch.zeros(2, 8, dtype=torch.long),),
         {"idx": {0: torch.export.Dim("batch"), 1: torch.export.Dim("time", max=gpt.config.block_size)}}),
        ("digits-ddpm", lambda: export_denoiser(unet, (1, 8, 8)), unet,
         (torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long)),
         None),
    ]:
        start = time.perf_counter()
        fn()
        legacy = time.perf_counter() - start
        other = "skipped"
        if dynamo:
            start = time.perf_counter()
            try:
                quiet = io.StringIO()  # the exporter prints its progress and, on failure, the graph
                with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
                    warnings.simplefilter("ignore")
                    torch.onnx.export(module.eval(), args, None, dynamo=True,
                                      dynamic_shapes=shapes, verbose=False)
                other = f"{time.perf_counter() - start:.1f}"
            except Exception as err:  # noqa: BLE001 -- the point is to report it
                other = f"fails: {type(err).__name__}"
        print(f"{name:<14}{legacy:>22.1f}{other:>24}")


def inference(gpt, unet, threads: int, repeat: int) -> None:
    gpt_session = OnnxModel(export_gpt(gpt), threads=threads)
    unet_session = OnnxModel(export_denoiser(unet, (1, 8, 8)), threads=threads)
    print(f"\nInference, milliseconds per call ({threads} thread(s) for both)")
    print(f"{'call':<34}{'PyTorch eager':>15}{'onnxruntime':>13}{'speed-up':>10}")
    gen = torch.Generator().manual_seed(0)
    cases = []
    for b, t in [(1, 16), (1, 128), (8, 128)]:
        idx = torch.randint(0, gpt.config.vocab_size, (b, t), generator=gen)
        cases.append((f"code-gpt logits B={b} T={t}", lambda idx=idx: gpt(idx), lambda idx=idx: gpt_session(idx)))
    for b in (1, 64):
        x, step, y = torch.randn(b, 1, 8, 8, generator=gen), torch.full((b,), 500), torch.arange(b) % 10
        cases.append((f"digits-ddpm U-Net B={b}", lambda x=x, s=step, y=y: unet(x, s, y),
                      lambda x=x, s=step, y=y: unet_session(x, s, y)))
    with torch.no_grad():
        for name, eager, ort in cases:
            best = fastest_seconds({"eager": eager, "ort": ort}, repeat)
            print(f"{name:<34}{best['eager'] * 1e3:>15.2f}{best['ort'] * 1e3:>13.2f}"
                  f"{best['eager'] / best['ort']:>9.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--no-dynamo", action="store_true", help="skip timing the torch.export-based exporter")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} thread(s), CPU")
    gpt = pretrained.load("code-gpt", device="cpu").model.eval()
    unet = pretrained.load("digits-ddpm", device="cpu").model.eval()
    inference(gpt, unet, args.threads, args.repeat)
    export_times(gpt, unet, not args.no_dynamo)


if __name__ == "__main__":
    main()
