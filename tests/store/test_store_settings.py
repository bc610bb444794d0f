"""Settings: defaults, TOML file, CHAIRSIDE_ env overrides, unknown keys, ``chairside config``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chairside.cli import main
from chairside.settings import Settings, SettingsError, default_config_path, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    import os

    for key in list(os.environ):
        if key.upper().startswith("CHAIRSIDE_"):
            monkeypatch.delenv(key)
    # keep the user's real config folder out of the tests
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))


def test_defaults(tmp_path):
    s = load_settings()
    assert s.port is None and s.driver == "ge-s5" and s.protocol == "iv-ketamine-depression"
    assert s.bell is True and s.staff_initials is None
    assert s.session_dir == tmp_path / "xdg-data" / "chairside" / "sessions"
    assert s.log_dir.is_relative_to(tmp_path / "xdg-state")
    assert set(s.origins.values()) == {"default"}
    assert default_config_path() == tmp_path / "xdg-config" / "chairside" / "config.toml"


def test_file_in_the_user_config_folder(tmp_path):
    cfg = tmp_path / "xdg-config" / "chairside" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text('port = "socket://127.0.0.1:7000"\nbell = false\nsession_dir = "~/sess"\n')
    s = load_settings()
    assert s.port == "socket://127.0.0.1:7000" and s.bell is False
    assert s.session_dir == Path("~/sess").expanduser()
    assert s.origins["port"] == str(cfg) and s.origins["driver"] == "default"


def test_env_overrides_the_file(tmp_path, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text('driver = "hl7"\nbell = false\n')
    monkeypatch.setenv("CHAIRSIDE_CONFIG", str(cfg))
    monkeypatch.setenv("CHAIRSIDE_DRIVER", "masimo")
    monkeypatch.setenv("CHAIRSIDE_STAFF_INITIALS", "JD")
    s = load_settings()
    assert s.driver == "masimo" and s.bell is False and s.staff_initials == "JD"
    assert s.origins["driver"] == "env CHAIRSIDE_DRIVER"
    assert s.origins["bell"] == str(cfg)
    assert s.origins["staff_initials"] == "env CHAIRSIDE_STAFF_INITIALS"


def test_unknown_key_names_file_and_key(tmp_path, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text('port = "loop://"\ncolour = "red"\n')
    monkeypatch.setenv("CHAIRSIDE_CONFIG", str(cfg))
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert str(cfg) in str(info.value) and "'colour'" in str(info.value)


def test_bad_value_names_where_it_came_from(tmp_path, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text('driver = "philips"\n')
    monkeypatch.setenv("CHAIRSIDE_CONFIG", str(cfg))
    with pytest.raises(SettingsError, match=r"c\.toml: driver"):
        load_settings()
    cfg.write_text("")
    monkeypatch.setenv("CHAIRSIDE_BELL", "perhaps")
    with pytest.raises(SettingsError, match="CHAIRSIDE_BELL: bell"):
        load_settings()


def test_bad_toml_and_missing_named_file(tmp_path, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text("port = \n")
    monkeypatch.setenv("CHAIRSIDE_CONFIG", str(cfg))
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings()
    monkeypatch.setenv("CHAIRSIDE_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(SettingsError, match="nope.toml: config file not found"):
        load_settings()


def test_settings_are_frozen_and_typed():
    s = Settings()
    with pytest.raises(Exception):
        s.port = "x"  # type: ignore[misc]


def test_config_command_prints_values_and_origins(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('protocol = "esketamine-clinic"\n')
    monkeypatch.setenv("CHAIRSIDE_CONFIG", str(cfg))
    monkeypatch.setenv("CHAIRSIDE_BELL", "false")
    assert main(["config"]) == 0
    lines = capsys.readouterr().out.splitlines()
    by_name = {ln.split("=")[0].strip(): ln for ln in lines if not ln.startswith("#")}
    assert set(by_name) == set(Settings.model_fields)
    assert by_name["protocol"].endswith(f"esketamine-clinic  ({cfg})")
    assert by_name["bell"].endswith("false  (env CHAIRSIDE_BELL)")
    assert by_name["driver"].endswith("ge-s5  (default)")
    assert main(["config", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["bell"] == {"value": False, "origin": "env CHAIRSIDE_BELL"}


def test_config_command_bad_file_exits_2(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("sesion_dir = '/tmp'\n")
    monkeypatch.setenv("CHAIRSIDE_CONFIG", str(cfg))
    assert main(["config"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(cfg) in err and "sesion_dir" in err
