"""The name the paper's code imports: ``from adaptive_diffusion import AdaptiveDiffusionPipeline``.

The object lives in the Celery-free method library (``shared.method.adaptive``); this module only gives it the paper's
import path."""

from shared.method.adaptive import AdaptiveDiffusionPipeline

__all__ = ["AdaptiveDiffusionPipeline"]
