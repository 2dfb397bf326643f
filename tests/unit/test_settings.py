import pytest
from pydantic import ValidationError

from adq.core.config import Settings


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


def test_the_gateway_refuses_to_listen_beyond_loopback_without_api_keys():

    import pytest

    from adq.cli.services import check_api_exposure
    from adq.core.errors import InputError
    from tests.helpers import configured

    with configured(ADQ_API_KEYS=""):
        for host in ("127.0.0.1", "::1", "localhost"):
            check_api_exposure(host, insecure=False)
        for host in ("0.0.0.0", "192.168.1.5", "api.example.com"):
            with pytest.raises(InputError, match="ADQ_API_KEYS is empty.*--insecure"):
                check_api_exposure(host, insecure=False)
        check_api_exposure("0.0.0.0", insecure=True)  # said explicitly
    with configured(ADQ_API_KEYS="web:8f3kq0zv7LmN2xPw"):
        check_api_exposure("0.0.0.0", insecure=False)
    for raw, fault in ((",", "holds no key"), ("web:change-me", "weak or a placeholder"), ("web:short", "weak"),
                       ("a:8f3kq0zv7LmN2xPw,a:9g4lr1aw8MnO3yQx", "two keys are named 'a'"),
                       ("n" * 65 + ":8f3kq0zv7LmN2xPw", "1 to 64 characters")):  # fmt: skip
        with configured(ADQ_API_KEYS=raw), pytest.raises(InputError, match=fault):
            check_api_exposure("0.0.0.0", insecure=False)  # auth would fail open or collide: refused, never served
