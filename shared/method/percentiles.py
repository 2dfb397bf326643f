"""Cut-off tau from calibrated student scores, and the percentile JSON format shared with the reference code.

The file keeps the reference's keys ("10" ... "90") and adds every integer percentile 0..100, plus a "meta"
object recording the student settings the scores were sampled under. Readers ignore keys that are not integers,
so the reference's own loader still reads our files, and we read theirs.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from adq.core.errors import CalibrationError, InputError
from adq.method.params import check_k


@dataclass(frozen=True)
class Percentiles:
    values: dict[int, float]  # percentile k -> score
    meta: dict = field(default_factory=dict)

    def tau(self, k: int) -> float | None:
        """The k-th percentile. None for k=0 and k=100 when not tabulated: routing decides those without tau."""
        k = check_k(k)
        if k in self.values:
            return self.values[k]
        if k in (0, 100):
            return None
        known = sorted(self.values)
        lower = [p for p in known if p < k]
        upper = [p for p in known if p > k]
        if not lower or not upper:
            raise CalibrationError(
                f"k={k} is outside the calibrated percentiles {known[0]}..{known[-1]}; "
                f"run `adq calibrate` to tabulate every percentile from 0 to 100"
            )
        lo, hi = lower[-1], upper[0]
        w = (k - lo) / (hi - lo)
        return self.values[lo] * (1 - w) + self.values[hi] * w

    def to_json(self) -> dict:
        out: dict = {str(k): float(v) for k, v in sorted(self.values.items())}
        if self.meta:
            out["meta"] = self.meta
        return out


def below_cutoff(score: float, tau: float | None, k: int) -> bool:
    """True when the teacher should improve the image: a fraction k/100 of calibrated student samples."""
    if k <= 0:
        return False
    if k >= 100:
        return True
    if tau is None:
        raise CalibrationError(f"no tau for k={k}")
    return score < tau


def percentile(sorted_scores: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), without needing numpy here."""
    if not sorted_scores:
        raise InputError("cannot take a percentile of no scores")
    pos = (len(sorted_scores) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_scores[lo] + (sorted_scores[hi] - sorted_scores[lo]) * (pos - lo)


def from_scores(scores: Iterable[float], meta: dict | None = None) -> Percentiles:
    ordered = sorted(float(s) for s in scores)
    if any(not math.isfinite(s) for s in ordered):
        raise InputError("calibration scores contain NaN or infinity")
    return Percentiles({k: percentile(ordered, k) for k in range(101)}, dict(meta or {}))


def parse(data: Mapping) -> Percentiles:
    values: dict[int, float] = {}
    for key, value in data.items():
        if key == "meta":
            continue
        try:
            k = int(key)
        except (TypeError, ValueError):
            continue
        if not 0 <= k <= 100 or str(k) != str(key).strip():
            raise InputError(f"percentile key {key!r} is not an integer from 0 to 100")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"percentile {key!r} has a non-numeric value {value!r}")
        values[k] = float(value)
    if not values:
        raise InputError("calibration file has no percentiles")
    ks = sorted(values)
    if any(values[a] > values[b] for a, b in zip(ks, ks[1:])):
        raise InputError("calibration percentiles must not decrease with k")
    meta = data.get("meta") or {}
    return Percentiles(values, dict(meta))


def load(path: str | Path) -> Percentiles:
    try:
        with open(path, encoding="utf-8") as fh:
            return parse(json.load(fh))
    except FileNotFoundError:
        raise CalibrationError(f"calibration file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"calibration file {path} is not valid JSON: {exc}") from None


def save(percentiles: Percentiles, path: str | Path) -> Path:
    """Write atomically, so a crash never leaves a half-written calibration behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(percentiles.to_json(), fh, indent=1)
            fh.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a calibration is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_prompts(path: str | Path) -> list[str]:
    """A CSV with a `caption` column (the reference's format) or a text file with one prompt per line."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise InputError(f"prompt file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        if not rows or "caption" not in rows[0]:
            raise InputError(f"{path} has no 'caption' column")
        prompts = [r["caption"].strip() for r in rows if (r.get("caption") or "").strip()]
    else:
        prompts = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not prompts:
        raise InputError(f"{path} contains no prompts")
    return prompts
