"""deploy/syncd.service: what the unit promises, and that systemd itself accepts it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from syncd.settings import GoogleSettings, HttpSettings, load_settings

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "syncd.service"


def directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1, "min": 60}
    for suffix, factor in units.items():
        if value.endswith(suffix) and value[: -len(suffix)].isdigit():
            return int(value[: -len(suffix)]) * factor
    return float(value)


def test_the_unit_says_what_the_runtime_spec_asks() -> None:
    d = directives(UNIT.read_text())
    assert d["Type"] == ["notify"]
    assert d["Restart"] == ["on-failure"]
    assert d["DynamicUser"] == ["yes"] and d["StateDirectory"] == ["syncd"]
    assert d["ProtectSystem"] == ["strict"] and d["NoNewPrivileges"] == ["yes"]
    for hardening in ("ProtectHome", "PrivateTmp", "PrivateDevices", "RestrictSUIDSGID",
                      "ProtectKernelTunables", "ProtectControlGroups", "LockPersonality"):
        assert d[hardening] == ["yes"], hardening
    assert d["CapabilityBoundingSet"] == [""]
    assert "SYNCD_SETTINGS=/etc/syncd/settings.yaml" in d["Environment"]
    assert d["ExecStart"][0].endswith("/bin/syncd run")
    assert seconds(d["WatchdogSec"][0]) >= 10
    # The drain budget fits inside the time systemd gives before SIGKILL.
    assert seconds(d["TimeoutStopSec"][0]) >= HttpSettings().stop_timeout_seconds
    # Credentials are named like the files the settings point at (that is how they are found).
    names = {c.split(":", 1)[0] for c in d["LoadCredential"]}
    google = GoogleSettings()
    assert {Path(google.token_key_file).name, Path(google.client_file).name} <= names


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install -y systemd)")
    # verify checks that ExecStart's program exists: point it at this venv's real `syncd`.
    syncd = Path(sys.executable).parent / "syncd"
    assert syncd.exists(), syncd
    text = UNIT.read_text().replace("ExecStart=/opt/syncd/venv/bin/syncd",
                                    f"ExecStart={syncd}")
    unit = tmp_path / "syncd.service"
    unit.write_text(text)
    r = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                       timeout=60, check=False)
    ours = [line for line in (r.stdout + r.stderr).splitlines() if "syncd.service" in line]
    assert r.returncode == 0 and not ours, r.stdout + r.stderr


def test_credentials_directory_wins_over_configured_paths(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "token.key").write_text("k")
    for key in [k for k in os.environ if k.startswith("SYNCD_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("SYNCD_SETTINGS", str(tmp_path / "settings.yaml"))
    (tmp_path / "settings.yaml").write_text(
        "google:\n  token_key_file: /etc/elsewhere/token.key\n"
        "  client_file: /etc/elsewhere/google-client.json\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    s = load_settings()
    assert s.google.token_key_file == str(creds / "token.key")
    assert s.google.client_file == "/etc/elsewhere/google-client.json"  # no such credential
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    assert load_settings().google.token_key_file == "/etc/elsewhere/token.key"
