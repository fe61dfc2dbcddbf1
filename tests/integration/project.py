"""What the lab tests share: a private copy of the example app and lab inventory, HTTP and SSH helpers.

lab1 nginx+gunicorn, lab2 nginx+uwsgi, lab3 apache+mod_wsgi (inventories/lab.yml).
"""

from __future__ import annotations

import http.client
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
HOSTS = {"lab1": "198.18.1.2", "lab2": "198.18.2.2", "lab3": "198.18.3.2"}
SECRET = "lab-only-not-secret-3f9c2b"


def get(address: str, path: str, host: str | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection(address, 80, timeout=10)
    conn.request("GET", path, headers={"Host": host or address})
    resp = conn.getresponse()
    return resp.status, resp.read().decode()


class Project:
    """A private copy of the example app and the lab inventory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copytree(REPO / "examples" / "hello", root / "app", ignore=shutil.ignore_patterns("__pycache__", "instance"))
        (root / "inv").mkdir()
        shutil.copy(REPO / "inventories" / "lab-secrets.env", root / "inv" / "lab-secrets.env")
        self.doc = yaml.safe_load((REPO / "inventories" / "lab.yml").read_text())
        self.doc["app"]["source"] = "../app"
        self.save()

    @property
    def inventory(self) -> Path:
        return self.root / "inv" / "lab.yml"

    def save(self) -> None:
        self.inventory.write_text(yaml.safe_dump(self.doc, sort_keys=False))

    def greet(self, text: str) -> None:
        self.doc["app"]["env"]["APP_GREETING"] = text
        self.save()

    def change_code(self, marker: str) -> None:
        path = self.root / "app" / "app.py"
        path.write_text(path.read_text() + f"\n# change {marker}\n")

    def deployer(self, *args: str, check: bool = False, timeout: float = 300) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "deployer.cli", *args, "-i", str(self.inventory)]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if check and result.returncode != 0:
            raise AssertionError(f"{args} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    def deploy_json(self, *args: str) -> tuple[int, dict[str, dict]]:
        result = self.deployer("deploy", "--json", *args)
        assert SECRET not in result.stdout + result.stderr
        try:
            doc = json.loads(result.stdout)
        except ValueError:
            raise AssertionError(f"not JSON (exit {result.returncode}):\n{result.stdout}\n{result.stderr}") from None
        return result.returncode, {r["host"]: r for r in doc["results"]}


def ssh(lab, name: str, *argv: str) -> str:
    cmd = ["ssh", "-i", str(lab.key_path), "-o", f"UserKnownHostsFile={lab.known_hosts_path}",
           "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", f"root@{HOSTS[name]}", "--", shlex.join(argv)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
