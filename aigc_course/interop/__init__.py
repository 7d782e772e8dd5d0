"""The course's models in the wider ecosystem (book Part 7): Hugging Face, ONNX, model cards.

* :mod:`~aigc_course.interop.huggingface`: ``code-gpt`` as a ``transformers`` model and
  tokenizer; diffusers schedulers stepping the course's denoisers.
* :mod:`~aigc_course.interop.onnx`: ONNX export and onnxruntime inference.
* :mod:`~aigc_course.interop.model_card`: a README-style card per shipped checkpoint.

The optional libraries (transformers, diffusers, onnx, onnxruntime) load only when called.
"""

from aigc_course.interop.huggingface import (
    byte_alphabet,
    diffusers_scheduler,
    sample_with_scheduler,
    to_transformers,
    to_transformers_tokenizer,
)
from aigc_course.interop.model_card import data_sources, model_card, write_model_card
from aigc_course.interop.onnx import (
    OnnxExportError,
    OnnxModel,
    export_denoiser,
    export_gpt,
    export_onnx,
    fastest_seconds,
)

__all__ = [
    "OnnxExportError",
    "OnnxModel",
    "byte_alphabet",
    "data_sources",
    "diffusers_scheduler",
    "export_denoiser",
    "export_gpt",
    "export_onnx",
    "fastest_seconds",
    "model_card",
    "sample_with_scheduler",
    "to_transformers",
    "to_transformers_tokenizer",
    "write_model_card",
]
