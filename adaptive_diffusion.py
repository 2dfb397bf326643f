"""The name the paper's code imports: ``from adaptive_diffusion import AdaptiveDiffusionPipeline``.

The object lives in the Celery-free method library (``adq.method.adaptive``); this module only gives it the paper's
import path."""

from adq.method.adaptive import AdaptiveDiffusionPipeline

__all__ = ["AdaptiveDiffusionPipeline"]
