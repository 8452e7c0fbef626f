"""`syncd run` with a bad setting exits non-zero with a message naming the key (SPEC §6)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

from tests.ops.conftest import base_settings, clean_env
from tests.ops.test_systemd import Listener


def start(tmp_path: Path, name: str, settings: dict | None, **env: str) -> subprocess.Popen:
    workdir = tmp_path / name
    workdir.mkdir()
    path = workdir / "settings.yaml"
    if settings is not None:
        path.write_text(yaml.safe_dump(settings))
    return subprocess.Popen([sys.executable, "-m", "syncd", "run"], cwd=workdir,
                            env=clean_env(SYNCD_SETTINGS=str(path), **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_bad_settings_stop_the_daemon_naming_the_key(tmp_path: Path) -> None:
    good = base_settings(tmp_path / "state")
    listener = Listener(f"@syncd-test-{uuid.uuid4().hex}")
    cases = {  # name → (process, what stderr must say)
        "env_timezone": (start(tmp_path, "env_timezone", good,
                               SYNCD_NOTIFY__DEFAULT_TIMEZONE="Mars/Base",
                               NOTIFY_SOCKET=listener.address),
                         ["notify.default_timezone", "Mars/Base"]),
        "yaml_unknown_key": (start(tmp_path, "yaml_unknown_key",
                                   {**good, "http": {**good["http"], "prot": 8080}}),
                             ["http.prot"]),
        "yaml_unknown_section": (start(tmp_path, "yaml_unknown_section",
                                       {**good, "notfy": {"due_soon_minutes": 5}}), ["notfy"]),
        "yaml_bad_value": (start(tmp_path, "yaml_bad_value",
                                 {**good, "http": {**good["http"], "port": 99999}}),
                           ["http.port"]),
        "env_bad_value": (start(tmp_path, "env_bad_value", good, SYNCD_JOBS__BATCH_SIZE="lots"),
                          ["jobs.batch_size"]),
        "no_settings_file": (start(tmp_path, "no_settings_file", None), ["SYNCD_SETTINGS"]),
    }
    try:
        for name, (proc, expected) in cases.items():
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 2, (name, proc.returncode, out, err)
            assert "Traceback" not in err, (name, err)
            for text in expected:
                assert text in err, (name, text, err)
        # Under systemd the reason also shows in `systemctl status` (STATUS=).
        status = [line for _, line in listener.lines() if line.startswith("STATUS=")]
        assert any("notify.default_timezone" in s for s in status), status
        assert not any(line == "READY=1" for _, line in listener.lines())
    finally:
        listener.close()
        for proc, _ in cases.values():
            if proc.poll() is None:
                proc.kill()


def test_db_upgrade_on_an_empty_database_then_status(tmp_path: Path, db_url: str) -> None:
    """An operator's first steps: `syncd db upgrade` on a database with nothing in it, then
    `syncd status` on the result."""
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(base_settings(tmp_path / "state", db_url)))
    env = clean_env(SYNCD_SETTINGS=str(path))

    def syncd(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "syncd", *args], check=False, cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=60)

    up = syncd("db", "upgrade")
    assert up.returncode == 0, up.stderr
    assert "database at head" in up.stdout
    status = syncd("status")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["database"] == db_url.split(":")[0] and report["users"] == 0


def test_settings_yaml_names_every_setting() -> None:
    # The shipped file is the operator's reference: a setting missing from it is one nobody
    # knows to set, and a key the daemon doesn't know is a typo it would reject at start.
    from pydantic import BaseModel

    from syncd.settings import Settings

    def keys(model: type[BaseModel], prefix: str = "") -> set[str]:
        out = set()
        for name, field in model.model_fields.items():
            key = prefix + (field.alias or name)
            sub = field.annotation
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                out |= keys(sub, key + ".")
            else:
                out.add(key)
        return out

    def written(doc: dict, prefix: str = "") -> set[str]:
        out = set()
        for k, v in doc.items():
            out |= written(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k}
        return out

    doc = yaml.safe_load((Path(__file__).parents[2] / "settings.yaml").read_text())
    assert written(doc) == keys(Settings)
