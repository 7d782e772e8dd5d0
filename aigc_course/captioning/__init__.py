"""Image-to-text (book 2.3): a small ViT patch encoder and the Transformer decoder (3.1.1).

:class:`~aigc_course.captioning.models.Captioner` is the encoder-decoder Transformer of
:mod:`aigc_course.seq2seq` with the source tokens replaced by image patches;
:class:`~aigc_course.captioning.pipelines.CaptionPipeline` (``pretrained.load("captioner")``)
turns images into captions, greedy or by beam search.
"""

from aigc_course.captioning.models import Captioner, CaptionVocabulary, PatchEncoder, caption_scores
from aigc_course.captioning.pipelines import CaptionPipeline

__all__ = ["CaptionPipeline", "CaptionVocabulary", "Captioner", "PatchEncoder", "caption_scores"]
