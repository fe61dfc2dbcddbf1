"""Failed requests during code-change deploys on the lab, counted per host.

    python bench/zero_downtime.py [--deploys 10] [--threads 2]

Brings the lab up (waiting for a test session that holds it), deploys the
example app, then runs ``--deploys`` code-change deploys while ``--threads``
threads per host request /healthz over a new connection each time (more
than 2 per host runs the controller out of ephemeral ports: TIME_WAIT).
Prints, per host, the requests sent and every non-200 (status and the first
line of its body: the app's own 503 says "database schema", Apache's says
"Service Unavailable"), and mod_wsgi's errors in lab3's Apache error log.
Takes the lab down at the end.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from deployer.lab import Lab  # noqa: E402
from tests.integration.project import HOSTS, Project, get, ssh  # noqa: E402

# what Apache logs when a request meets a daemon socket gone (503) or a daemon killed mid-request (500)
WSGI_ERRORS = ("Unable to connect to WSGI daemon process", "Truncated or oversized response headers")
APACHE_RELOAD = "Doing graceful restart"  # AH00493, once per graceful reload of Apache


def hammer(address: str, stop: threading.Event, sent: collections.Counter, failures: list[str], name: str) -> None:
    while not stop.is_set():
        try:
            status, body = get(address, "/healthz")
            if status != 200:
                failures.append(f"{name}: HTTP {status}: {(body.strip().splitlines() or [''])[0][:100]}")
        except OSError as exc:
            failures.append(f"{name}: {exc}")
        sent[name] += 1
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deploys", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    deploys = args.deploys
    lab = Lab()
    with lab.session(say=lambda msg: print(msg, file=sys.stderr)):  # one lab per machine
        lab.up(len(HOSTS))
        try:
            with tempfile.TemporaryDirectory() as tmp:
                project = Project(Path(tmp))
                code, results = project.deploy_json()
                assert code == 0, results
                log_before = len(ssh(lab, "lab3", "cat", "/var/log/apache2/error.log").splitlines())
                sent: collections.Counter = collections.Counter()
                failures: list[str] = []
                per_deploy = []
                for i in range(deploys):
                    stop = threading.Event()
                    threads = [threading.Thread(target=hammer, args=(a, stop, sent, failures, n))
                               for n, a in HOSTS.items() for _ in range(args.threads)]
                    for t in threads:
                        t.start()
                    before = len(failures)
                    time.sleep(0.5)
                    project.change_code(f"bench {i}")
                    started = time.monotonic()
                    code, results = project.deploy_json()
                    took = time.monotonic() - started
                    time.sleep(0.5)
                    stop.set()
                    for t in threads:
                        t.join()
                    assert code == 0, results
                    per_deploy.append((i + 1, took, len(failures) - before))
                    print(f"deploy {i + 1}: {took:.1f} s, {len(failures) - before} failed request(s)", file=sys.stderr)
                log = ssh(lab, "lab3", "cat", "/var/log/apache2/error.log").splitlines()[log_before:]
        finally:
            lab.down()
    print(f"{deploys} code-change deploys, {args.threads} request thread(s) per host")
    print("| host | requests | non-200 |")
    print("|---|---:|---:|")
    for name in HOSTS:
        print(f"| {name} | {sent[name]} | {sum(f.startswith(name + ':') for f in failures)} |")
    print(f"deploys with a failure: {sum(1 for _, _, n in per_deploy if n)} of {deploys}")
    for error in (APACHE_RELOAD, *WSGI_ERRORS):
        print(f"lab3 error.log '{error}': {sum(error in line for line in log)}")
    for failure, count in collections.Counter(failures).most_common():
        print(f"  {count} x {failure}")


if __name__ == "__main__":
    main()
