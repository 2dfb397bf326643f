import pytest
from pydantic import ValidationError

from shared.config import Settings


def test_visibility_timeout_must_exceed_hard_time_limits():
    with pytest.raises(ValidationError, match="ADQ_VISIBILITY_TIMEOUT_S=600 must exceed"):
        Settings(teacher_time_limit_s=900, visibility_timeout_s=600)
    Settings(teacher_time_limit_s=900, visibility_timeout_s=901)


def test_embedded_defaults_need_no_server(tmp_path, monkeypatch):
    monkeypatch.delenv("ADQ_PRESET", raising=False)
    s = Settings(home=tmp_path)
    assert s.effective_broker_url == "filesystem://"
    assert s.effective_database_url == f"sqlite:///{tmp_path}/adq.db"
    assert s.effective_storage_url == (tmp_path / "objects").as_uri()
    assert s.preset == "tiny"  # accepts any prompt; `adq demo` runs the trained shapes preset


def test_settings_come_from_adq_environment(monkeypatch):
    monkeypatch.setenv("ADQ_PRESET", "sdxl-turbo")
    monkeypatch.setenv("ADQ_MAX_ATTEMPTS", "5")
    s = Settings()
    assert (s.preset, s.max_attempts) == ("sdxl-turbo", 5)
