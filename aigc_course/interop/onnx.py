"""Export the course's models to ONNX and run them with onnxruntime (book 7.2).

:func:`export_onnx` traces a module with ``torch.onnx.export``'s TorchScript exporter
(``dynamo=False``): for ``code-gpt`` it is many times faster than the ``torch.export`` path,
which also refuses the diffusion U-Net because its label check reads tensor values (``benchmarks/bench_export.py`` measures both). Python-level checks
in ``forward`` run once, at trace time, on the example inputs; the graph keeps only tensor
operations, with the axes named in ``dynamic_axes`` left free.

:func:`export_gpt` (``idx (B, T)`` -> ``logits (B, T, V)``) and :func:`export_denoiser`
(``x (B, C, H, W), t (B,), labels (B,)`` -> ``eps (B, C, H, W)``) fix the names and axes;
:class:`OnnxModel` runs the bytes with onnxruntime on torch tensors.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from aigc_course._checks import check_int

OPSET = 18


class OnnxExportError(RuntimeError):
    """``torch.onnx.export`` failed; the message names the module and the exporter's first line."""


class _Logits(nn.Module):
    """``GPT.forward`` returns ``(logits, loss)``; ONNX gets the logits alone."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.model(idx)[0]


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_onnx(module: nn.Module, example_inputs: tuple[torch.Tensor, ...], *, input_names: list[str],
                output_names: list[str], dynamic_axes: dict[str, dict[int, str]] | None = None,
                path: Path | str | None = None, opset: int = OPSET) -> bytes:
    """The ONNX model (bytes) of ``module`` traced on ``example_inputs``; also written to ``path`` if given.

    The module is traced in eval mode on the CPU (a copy is not made: it is moved back after).
    Raises :class:`OnnxExportError` naming the module when the exporter fails.
    """
    if not isinstance(module, nn.Module):
        raise ValueError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(example_inputs, tuple) or not all(isinstance(x, torch.Tensor) for x in example_inputs):
        raise ValueError("example_inputs must be a tuple of tensors, one per input of forward")
    if len(input_names) != len(example_inputs):
        raise ValueError(f"input_names must name each of the {len(example_inputs)} inputs, got {input_names!r}")
    try:
        import onnx  # noqa: F401  (the exporter needs it; say so plainly)
    except ImportError as err:
        raise ImportError("ONNX export needs the onnx package: pip install 'aigc-course[test]'") from err
    device = next(module.parameters()).device
    was_training = module.training
    module.eval().cpu()
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TracerWarnings: the checks in forward become constants, as intended
            torch.onnx.export(module, tuple(x.cpu() for x in example_inputs), buffer, input_names=input_names,
                              output_names=output_names, dynamic_axes=dynamic_axes or {}, opset_version=opset,
                              dynamo=False)
    except Exception as err:  # the exporter raises many types; one clear error instead
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OnnxExportError(f"could not export {type(module).__name__} to ONNX (opset {opset}): {first}") from err
    finally:
        module.to(device).train(was_training)
    data = buffer.getvalue()
    if path is not None:
        _write_atomically(Path(path), data)
    return data


def export_gpt(model: nn.Module, path: Path | str | None = None) -> bytes:
    """A GPT as ONNX: input ``idx`` ``(batch, time)`` int64 -> output ``logits`` ``(batch, time, vocab)``.

    Any batch and any ``time <= block_size`` (the position table's length) run.
    """
    if not hasattr(getattr(model, "config", None), "block_size"):
        raise ValueError(f"model must be a GPT (with config.block_size), got {type(model).__name__}")
    example = torch.zeros(2, min(8, model.config.block_size), dtype=torch.long)
    axes = {"idx": {0: "batch", 1: "time"}, "logits": {0: "batch", 1: "time"}}
    return export_onnx(_Logits(model), (example,), input_names=["idx"], output_names=["logits"],
                       dynamic_axes=axes, path=path)


def export_denoiser(model: nn.Module, sample_shape: tuple[int, ...], path: Path | str | None = None) -> bytes:
    """A class-conditional denoiser (``DigitUNet``) as ONNX: ``x (batch, *sample_shape)``
    float32, ``t (batch,)`` int64, ``labels (batch,)`` int64 -> ``eps (batch, *sample_shape)``."""
    if not hasattr(model, "null_label"):
        raise ValueError(f"model must be a class-conditional denoiser (with null_label), got {type(model).__name__}")
    if not isinstance(sample_shape, tuple) or not all(isinstance(n, int) and n > 0 for n in sample_shape):
        raise ValueError(f"sample_shape must be a tuple of positive ints (C, H, W), got {sample_shape!r}")
    x = torch.zeros(2, *sample_shape)
    t = torch.zeros(2, dtype=torch.long)
    labels = torch.zeros(2, dtype=torch.long)
    axes = {name: {0: "batch"} for name in ("x", "t", "labels", "eps")}
    return export_onnx(model, (x, t, labels), input_names=["x", "t", "labels"], output_names=["eps"],
                       dynamic_axes=axes, path=path)


class OnnxModel:
    """An onnxruntime session over exported bytes (or a file): ``model(*tensors) -> tensor or tuple``.

    Inputs are torch tensors (moved to the CPU for onnxruntime); outputs come back as torch
    tensors on ``device`` (default: the CPU). ``threads`` sets onnxruntime's intra-op threads.
    """

    def __init__(self, model: bytes | Path | str, *, device: torch.device | str | None = None,
                 threads: int | None = None):
        import onnxruntime as ort

        if isinstance(model, (str, Path)):
            model = Path(model).read_bytes()
        if not isinstance(model, bytes):
            raise ValueError(f"model must be ONNX bytes or a path to a .onnx file, got {type(model).__name__}")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        self.device = torch.device(device or "cpu")
        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(model, options, providers=providers)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, *inputs: torch.Tensor):
        if len(inputs) != len(self.input_names):
            raise ValueError(f"inputs must be {len(self.input_names)} tensors ({', '.join(self.input_names)}), "
                             f"got {len(inputs)}")
        feed = {name: x.detach().cpu().numpy() for name, x in zip(self.input_names, inputs, strict=True)}
        outputs = [torch.from_numpy(o).to(self.device) for o in self.session.run(None, feed)]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


def fastest_seconds(fns: dict[str, Callable[[], object]], repeat: int = 5) -> dict[str, float]:
    """The fastest wall-clock seconds of each function, calls interleaved (``{name: seconds}``).

    One warm-up call each first; the minimum, because on a shared machine others only add time.
    """
    if not fns or not all(callable(fn) for fn in fns.values()):
        raise ValueError("fns must be a non-empty dict of name -> callable")
    repeat = check_int(repeat, "repeat", low=1)
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best
