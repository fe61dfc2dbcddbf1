"""A project on disk (app, inventory, secrets, a filled wheel cache) and fake hosts to run the CLI against.

    proj = project(tmp_path, monkeypatch)
    result = proj.cli("deploy", "--no-verify")
    assert result.exit_code == 0 and proj.fleet["web1"].current

The wheel cache entry for the app's requirements is written beforehand (empty: the
app needs no wheels), so building the release is the real code and needs no network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from click.testing import CliRunner, Result

from deployer.artifact.dependencies import requirements
from deployer.artifact.manifest import host_python_of, requirements_lock_hash
from deployer.artifact.wheels import CACHE_FORMAT, wheel_cache_key
from deployer.cli import main
from deployer.cli.common import Wiring
from deployer.remote.fake import FakeFleet, HostState

SECRET = "s3cr3t-Key_value"
APP_PY = 'from flask import Flask\napp = Flask(__name__)\n\n@app.get("/healthz")\ndef health():\n    return "ok"\n'


@dataclass
class Project:
    root: Path
    inventory: Path
    fleet: FakeFleet

    def cli(self, command: str, *args: str, wiring: Wiring | None = None) -> Result:
        """``deployer COMMAND -i INVENTORY ARGS`` in-process against the fake hosts."""
        runner = CliRunner()  # click 8.2+: result.stdout and result.stderr apart
        return runner.invoke(main, [command, "-i", str(self.inventory), *args],
                             obj=wiring or Wiring(connect=self.fleet.connect), catch_exceptions=False)


def host_doc(name: str, index: int, **settings: object) -> dict:
    return {"address": f"198.18.{index}.2", "server_name": [f"{name}.lab.example"], **settings}


def project(tmp_path: Path, monkeypatch, hosts: dict[str, dict] | None = None, **app: object) -> Project:  # noqa: ANN001
    source = tmp_path / "app"
    (source / "static").mkdir(parents=True)
    (source / "app.py").write_text(APP_PY)
    (source / "static" / "style.css").write_text("body {}\n")
    (source / "requirements.txt").write_text("# nothing to install\n")
    (tmp_path / "secrets.env").write_text(f"APP_SECRET_KEY={SECRET}\n")
    doc = {
        "app": {"name": "hello", "source": "app", "wsgi": "app:app", "health": "/healthz",
                "env": {"APP_GREETING": "hi"}, "secrets": "secrets.env", "shared": ["instance"],
                "static": {"url": "/static", "dir": "static"}, **app},
        "defaults": {"ssh_user": "root", "known_hosts": str(tmp_path / "known_hosts"), "host_key_policy": "strict"},
        "hosts": hosts or {"web1": host_doc("web1", 1), "web2": host_doc("web2", 2, server="uwsgi")},
    }
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    fill_wheel_cache(tmp_path / "cache", source)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("DEPLOYER_INVENTORY", raising=False)
    return Project(tmp_path, inventory, FakeFleet())


def fill_wheel_cache(cache: Path, source: Path) -> None:
    """The cache entry ``ensure_wheels`` looks for, for the fake hosts' Python: no wheels, so no pip and no network."""
    state = HostState()
    target = host_python_of(state.python, state.platform)
    declared = requirements(source, "requirements.txt")
    entry = cache / "deployer" / "wheels" / wheel_cache_key([p.read_bytes() for p in declared.inputs], target)
    (entry / "wheels").mkdir(parents=True)
    info = {"format": CACHE_FORMAT, "target": target.as_dict(), "wheels": [], "sha256": {},
            "req_hash": requirements_lock_hash({}, target)}
    (entry / "entry.json").write_text(json.dumps(info))


class LaterClock:
    """For ``monkeypatch.setattr("deployer.artifact.release.datetime", LaterClock)``: an hour on, so a
    second release sorts after the first (ids start with the UTC time)."""

    @staticmethod
    def now(tz=None):  # noqa: ANN001, ANN205
        return datetime.now(tz) + timedelta(hours=1)


def journal_line(message: str, usec: int, unit: str = "hello.service") -> str:
    """One line of ``journalctl --output=json`` as the host prints it."""
    return json.dumps({"__REALTIME_TIMESTAMP": str(usec), "MESSAGE": message, "_SYSTEMD_UNIT": unit,
                       "SYSLOG_IDENTIFIER": "gunicorn"}) + "\n"
