"""Deploy timings on the lab: cold, no-change and code-change deploys for 1 and 8 hosts.

    python bench/deploy.py [--sizes 1,8] [--no-verify]

Each size starts from fresh hosts (lab down, then up), so "cold" includes
packages check, user, venv build, first start and (unless --no-verify) the
Testinfra verify after the health gate. The controller's peak memory is the
deployer process's max RSS; controller CPU is the user+system time of deployer
and its children (the verify processes) for the cold deploy. Results print as a
Markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from deployer.lab import Lab

REPO = Path(__file__).resolve().parent.parent


def deployer(*args: str) -> tuple[float, float, int, dict]:
    """Run deployer: wall seconds, controller CPU seconds (it and its children), peak RSS in KiB, --json doc."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "deployer.cli", *args], capture_output=True, text=True)
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    peak_kb = after.ru_maxrss
    if proc.returncode != 0:
        raise SystemExit(f"deployer {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    doc = json.loads(proc.stdout) if "--json" in args else {}
    return elapsed, cpu, peak_kb, doc


def inventory(root: Path, hosts: int) -> Path:
    shutil.copytree(REPO / "examples" / "hello", root / "app", ignore=shutil.ignore_patterns("__pycache__", "instance"))
    doc = yaml.safe_load((REPO / "inventories" / "lab.yml").read_text())
    doc["app"]["source"] = str(root / "app")
    doc["app"].pop("secrets")
    doc["groups"] = {"lab": {"vars": {"server": "gunicorn"},
                             "hosts": {f"lab{i}": {"address": f"198.18.{i}.2"} for i in range(1, hosts + 1)}}}
    path = root / "bench.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1,8")
    parser.add_argument("--no-verify", action="store_true", help="deploy with --no-verify")
    options = parser.parse_args()
    sizes = [int(s) for s in options.sizes.split(",")]
    flags = ("--no-verify",) if options.no_verify else ()
    rows = []
    lab = Lab()
    with lab.session(say=lambda msg: print(msg, file=sys.stderr)):  # one lab per machine
        for size in sizes:
            lab.down()
            lab.up(size)
            with tempfile.TemporaryDirectory() as tmp:
                inv = inventory(Path(tmp), size)
                cold, cold_cpu, _, _ = deployer("deploy", "--json", *flags, "-i", str(inv))
                same, _, _, doc = deployer("deploy", "--json", *flags, "-i", str(inv))
                assert {r["status"] for r in doc["results"]} == {"unchanged"}, doc
                app = Path(tmp) / "app" / "app.py"
                app.write_text(app.read_text() + "\n# bench change\n")
                change, _, peak_kb, doc = deployer("deploy", "--json", *flags, "-i", str(inv))
                assert {r["status"] for r in doc["results"]} == {"deployed"}, doc
            rows.append((size, cold, cold_cpu, same, change, peak_kb / 1024))
        lab.down()
    print(f"deploy {' '.join(flags) or '(with verify)'}")
    print("| hosts | cold deploy | controller CPU (cold) | no-change redeploy | code-change redeploy | controller peak RSS |")
    print("|---:|---:|---:|---:|---:|---:|")
    for size, cold, cpu, same, change, peak in rows:
        print(f"| {size} | {cold:.1f} s | {cpu:.1f} s | {same:.2f} s | {change:.1f} s | {peak:.0f} MB |")


if __name__ == "__main__":
    main()
