"""The documentation tells the truth: the settings reference is generated from the settings object and every
setting has a description; the README stays a front door whose links lead somewhere. (`make test` also builds the
site with `mkdocs build --strict`, which fails on a broken link between pages.)"""

import re
from pathlib import Path

from adq.core.config import Settings
from adq.core.reference import rows, settings_table

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_has_a_description():
    missing = [name for name, field in Settings.model_fields.items() if not (field.description or "").strip()]
    assert missing == []


def test_the_settings_reference_lists_every_setting_with_its_default():
    table = settings_table()
    assert len(rows()) == len(Settings.model_fields)
    for name in Settings.model_fields:
        assert f"`ADQ_{name.upper()}`" in table
    assert "| `ADQ_MAX_STEPS` | `200` | Most student or teacher denoising steps a job may ask for. (≥ 1) |" in table
    assert "<!-- settings-table -->" in (ROOT / "docs" / "settings.md").read_text()


def test_the_readme_is_a_front_door_and_its_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target
    assert "make demo" in text and "make test" in text
