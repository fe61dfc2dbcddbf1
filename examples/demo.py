"""`make demo`: boot three lab hosts, deploy examples/hello to them, show what each answers.

The deploy runs the app's database migration as a before_switch hook on each
host (its output is streamed as `labN: before_switch> ...`) and verifies each
host after its health gate; afterwards `deployer verify` shows every check per
host and `deployer exec` runs the migration again in each host's live
environment: up to date.

lab1 nginx+gunicorn, lab2 nginx+uwsgi, lab3 apache+mod_wsgi (inventories/lab.yml).
The hosts stay up afterwards so you can look around: `deployer lab ssh lab1`,
`deployer status -i inventories/lab.yml`; `deployer lab down` removes them.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INVENTORY = REPO / "inventories" / "lab.yml"
HOSTS = {"lab1": ("198.18.1.2", "nginx + gunicorn"), "lab2": ("198.18.2.2", "nginx + uwsgi"),
         "lab3": ("198.18.3.2", "apache + mod_wsgi")}


def deployer(*args: str) -> int:
    print(f"$ deployer {' '.join(args)}", flush=True)
    return subprocess.call([sys.executable, "-m", "deployer.cli", *args])


def get(address: str, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection(address, 80, timeout=10)
    conn.request("GET", path, headers={"Host": address})
    resp = conn.getresponse()
    return resp.status, resp.read().decode(errors="replace")


def main() -> int:
    if deployer("lab", "up", "--hosts", "3") != 0:
        return 1
    if deployer("check", "-i", str(INVENTORY)) != 0:
        return 2
    code = deployer("deploy", "-i", str(INVENTORY))
    print()
    for name, (address, stack) in HOSTS.items():
        print(f"{name} ({stack}): http://{address}/")
        for path in ("/healthz", "/whoami", "/count", "/static/style.css"):
            try:
                status, body = get(address, path)
                shown = body.strip().splitlines()[0][:80] if body.strip() else ""
            except OSError as exc:
                status, shown = 0, str(exc)
            print(f"  GET {path:<18} {status}  {shown}")
    print()
    deployer("status", "-i", str(INVENTORY))
    print()
    verified = deployer("verify", "-i", str(INVENTORY))
    print()
    deployer("exec", "-i", str(INVENTORY), "--", "flask", "--app", "app", "migrate")
    return code or verified


if __name__ == "__main__":
    sys.exit(main())
