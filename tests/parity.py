"""ImageReward parity across dependency upgrades (issue 11): weights, inputs and scores that do not depend on the
stack that made them.

The weights are a function of the checkpoint's own parameter names and shapes only: each float tensor is drawn
from numpy's PCG64 (a stream numpy keeps stable) seeded by the CRC-32 of its name, so a port onto other classes
that loads ImageReward.pt by the same names gets the same numbers. The names and shapes are in the fixture, so
the code that checks parity after an upgrade needs nothing from the package that recorded it.

Record (on the stack being replaced): ``python -m tests.parity``; check: tests/unit/test_imagereward.py.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "imagereward_parity.json"
PROMPTS = ["a red fox in the rain", "a lighthouse by the sea", "zebra", "the light in the rain by the sea"]
# The package initialises its MLP head with std 1/769, so random-weight scores would all but coincide. A head of
# std 1/sqrt(fan in) keeps scores of order one (so 1e-4 is a real tolerance, not float32 rounding of hundreds)
# while a difference between inputs, or a mix-up between batch items, still shows.
BODY_STD = 0.02


def images():
    """Seeded noise images of a few sizes (numpy's PCG64 and PIL: no model code involved)."""
    import numpy as np
    from PIL import Image

    sizes = [(64, 48), (224, 224), (300, 200), (97, 131)]
    return [
        Image.fromarray(np.random.default_rng(100 + i).integers(0, 256, (h, w, 3), dtype=np.uint8))
        for i, (w, h) in enumerate(sizes)
    ]


def weights(manifest: list[tuple[str, list[int]]]) -> dict:
    """The parity weights for these (name, shape) float parameters."""
    import numpy as np
    import torch

    out = {}
    for name, shape in manifest:
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        values = rng.standard_normal(shape, dtype=np.float32)
        if name.startswith("mlp.") and len(shape) == 2:
            values /= np.sqrt(shape[1])
        elif name.startswith("mlp."):
            values *= 0.1
        elif len(shape) == 1 and name.endswith("weight"):  # norms: around one
            values = 1.0 + BODY_STD * values
        else:
            values *= BODY_STD
        out[name] = torch.from_numpy(values)
    return out


def install(model, manifest) -> None:
    """Load the parity weights into every float parameter named in the manifest (all of them: strict)."""
    state = model.state_dict()
    state.update(weights(manifest))
    model.load_state_dict(state, strict=True)


def manifest_of(model) -> list[tuple[str, list[int]]]:
    import torch

    return [(n, list(t.shape)) for n, t in model.state_dict().items() if t.dtype == torch.float32]


def load() -> dict:
    return json.loads(FIXTURE.read_text())


def record(est) -> dict:
    """Score the parity inputs with ``est`` (built on the current stack, parity weights loaded)."""
    import importlib.metadata as md

    stack = {p: md.version(p) for p in ("torch", "torchvision", "transformers", "image-reward", "timm")}
    return {"stack": stack, "prompts": PROMPTS, "scores": est.score(PROMPTS, images())}


def main() -> None:  # pragma: no cover - run by hand on the stack being replaced
    import tempfile

    from tests.unit.test_imagereward import build_estimator

    with tempfile.TemporaryDirectory() as tmp:
        est, manifest = build_estimator(Path(tmp))
        install(est.model, manifest)
        result = record(est) | {"manifest": manifest}
    FIXTURE.parent.mkdir(exist_ok=True)
    FIXTURE.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {FIXTURE}: {result['scores']}")


if __name__ == "__main__":
    main()
