"""Issue 15: a limits file with an impossible delay or a priority it does not know is
refused with the file and the key named (the engine never starts on it)."""

from __future__ import annotations

import pytest
from alarms_support import LIMITS_DIR

from chairside.alarms import LimitsError, load_profile

BASE = (LIMITS_DIR / "standard.toml").read_text(encoding="utf-8")
SPO2_LOW_MED = 'priority = "medium", limit = 90, delay_s = { value = 15,'


def _refused(tmp_path, text: str) -> str:
    p = tmp_path / "clinic.toml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(LimitsError) as ei:
        load_profile(p)
    msg = str(ei.value)
    assert msg.startswith(str(p)), msg
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("bad", ["-5", "nan", "inf"])
def test_an_impossible_delay_is_refused_naming_file_and_key(tmp_path, bad):
    assert SPO2_LOW_MED in BASE
    msg = _refused(tmp_path, BASE.replace(SPO2_LOW_MED, SPO2_LOW_MED.replace("value = 15", f"value = {bad}")))
    assert "ladder[" in msg and "delay_s" in msg and "spo2_low" in msg


def test_a_delay_on_a_discrete_signal_is_refused(tmp_path):
    a = 'priority = "low", limit = 160, source = "[S]", basis = "(a) dosing: >=160/100" }'
    assert a in BASE
    msg = _refused(tmp_path, BASE.replace(a, a.replace('limit = 160,', 'limit = 160, delay_s = { value = 10, source = "[S]" },'), 1))
    assert "sbp_high" in msg and "delay_s applies to continuous signals only" in msg


def test_an_unknown_priority_is_refused_naming_file_and_key(tmp_path):
    msg = _refused(tmp_path, BASE.replace(SPO2_LOW_MED, SPO2_LOW_MED.replace('"medium"', '"urgent"')))
    assert "priority" in msg and "spo2_low" in msg


def test_an_unknown_technical_priority_is_refused(tmp_path):
    a = '[technical.link_lost]\nmessage = "Monitor link lost"\npriority = "medium"'
    assert a in BASE
    msg = _refused(tmp_path, BASE.replace(a, a.replace('"medium"', '"critical"')))
    assert "technical.link_lost.priority" in msg
