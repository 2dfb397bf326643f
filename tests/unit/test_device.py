"""Per-process model set-up (shared/method/models/device.py)."""

import logging

import pytest


def test_diffusers_empty_float32_warning_is_dropped_and_a_real_one_kept():
    pytest.importorskip("diffusers")
    from adq.method.models.device import configure_torch

    configure_torch()
    log = logging.getLogger("diffusers.models.modeling_utils")  # diffusers' root logger does not propagate
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    log.addHandler(handler)
    try:
        for modules in ([], ["quant_conv"]):
            log.warning(f"There are modules in AutoencoderKL that should be kept in float32: {modules}. Casting")
    finally:
        log.removeHandler(handler)
    assert seen == ["There are modules in AutoencoderKL that should be kept in float32: ['quant_conv']. Casting"]


def test_the_warning_is_the_one_diffusers_writes():
    """If diffusers changes the sentence, the filter above stops matching: this says so."""
    import inspect

    import diffusers.models.modeling_utils as modeling_utils

    assert "should be kept in float32: {fp32_modules}." in inspect.getsource(modeling_utils)
