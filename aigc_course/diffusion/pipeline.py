"""Deprecated: the pipelines moved to :mod:`aigc_course.diffusion.pipelines` (one name everywhere)."""

import warnings

from aigc_course.diffusion.pipelines import Diffusion2DPipeline, DigitsDDPMPipeline

warnings.warn("aigc_course.diffusion.pipeline is deprecated; import from aigc_course.diffusion.pipelines",
              DeprecationWarning, stacklevel=2)

__all__ = ["Diffusion2DPipeline", "DigitsDDPMPipeline"]
