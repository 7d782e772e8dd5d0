"""ONNX export of code-gpt and the digits-ddpm denoiser, run with onnxruntime: outputs equal to 1e-4."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aigc_course import pretrained
from aigc_course.interop import OnnxExportError, OnnxModel, export_denoiser, export_gpt, export_onnx

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def test_code_gpt_logits_match_for_any_batch_and_length(tmp_path):
    gpt = pretrained.load("code-gpt", device="cpu").model
    path = tmp_path / "code-gpt.onnx"
    data = export_gpt(gpt, path=path)
    assert path.read_bytes() == data and not list(tmp_path.glob(".*.tmp"))
    session = OnnxModel(path)
    assert session.input_names == ["idx"] and session.output_names == ["logits"]
    gen = torch.Generator().manual_seed(0)
    for shape in [(1, 1), (3, 37), (2, gpt.config.block_size)]:
        idx = torch.randint(0, gpt.config.vocab_size, shape, generator=gen)
        with torch.no_grad():
            expected = gpt(idx)[0]
        torch.testing.assert_close(session(idx), expected, rtol=0, atol=1e-4)


def test_denoiser_matches_for_any_batch():
    unet = pretrained.load("digits-ddpm", device="cpu").model
    session = OnnxModel(export_denoiser(unet, (1, 8, 8)), threads=1)
    gen = torch.Generator().manual_seed(0)
    for n in (1, 5):
        x = torch.randn(n, 1, 8, 8, generator=gen)
        t = torch.randint(0, 1000, (n,), generator=gen)
        labels = torch.randint(0, unet.null_label + 1, (n,), generator=gen)  # the null label too
        with torch.no_grad():
            expected = unet(x, t, labels)
        torch.testing.assert_close(session(x, t, labels), expected, rtol=0, atol=1e-4)


class _DataDependent(nn.Module):
    """A forward the tracer cannot record: the output's shape depends on the values."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return torch.nonzero(x > 0).float() * self.scale + torch.linalg.eig(x)[0].real.sum()


def test_export_errors_are_clear(tmp_path):
    with pytest.raises(OnnxExportError, match="could not export _DataDependent to ONNX"):
        export_onnx(_DataDependent(), (torch.randn(3, 3),), input_names=["x"], output_names=["y"],
                    path=tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()
    with pytest.raises(ValueError, match="input_names must name each of the 1 inputs"):
        export_onnx(nn.Linear(2, 2), (torch.randn(1, 2),), input_names=[], output_names=["y"])
    with pytest.raises(ValueError, match="model must be a GPT"):
        export_gpt(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="sample_shape must be a tuple"):
        export_denoiser(pretrained.load("digits-ddpm", device="cpu").model, [1, 8, 8])
    with pytest.raises(ValueError, match="inputs must be 1 tensors"):
        OnnxModel(export_onnx(nn.Linear(2, 2), (torch.randn(1, 2),), input_names=["x"], output_names=["y"]))(
            torch.randn(1, 2), torch.randn(1, 2))
