"""The slow tier: needs a CUDA device, never collected in CI (tests/conftest.py deselects it)."""

import numpy as np
import pytest

from adq.method import cascade
from tests.factories import params
from tests.helpers import configured

pytestmark = pytest.mark.gpu


def test_tiny_cascade_runs_on_cuda_in_fp16_and_is_reproducible():
    import torch

    from adq.method.models import registry

    with configured(ADQ_DEVICE="cuda"):
        student, estimator, teacher = registry.student("tiny"), registry.estimator("tiny"), registry.teacher("tiny")
        p = params(k=100, seed=3)
        a = cascade.run(p, None, student=student, estimator=estimator, teacher=teacher)
        b = cascade.run(p, None, student=student, estimator=estimator, teacher=teacher)
        assert student.pipe.unet.dtype == torch.float16
    assert a.teacher_used and np.array_equal(np.asarray(a.final_image), np.asarray(b.final_image))
