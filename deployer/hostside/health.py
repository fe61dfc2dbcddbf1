"""The health gate, run on the host: GET a path through the proxy until it answers 2xx or time runs out.

Sent by ``deployer.core.commands.health_check`` as ``python3 -c <this file>
SCHEME PORT HOST PATH DEADLINE``. Asks 127.0.0.1:PORT with ``Host: HOST`` (the
certificate is not checked: verify's tls-cert check judges it). Prints the
status and exits 0 on a 2xx; else prints the last answer or error and exits 1.
Standard library only, Python 3.9+.
"""

from __future__ import annotations

import http.client
import re
import ssl
import sys
import time
from typing import List, Optional, Tuple

RETRY_EVERY = 0.2  # seconds
TIMEOUT = 5  # seconds, per request


def connect(scheme: str, port: int) -> http.client.HTTPConnection:
    if scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection("127.0.0.1", port, timeout=TIMEOUT, context=ctx)
    return http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)


def attempt(scheme: str, port: int, host: str, path: str) -> Tuple[Optional[int], str]:
    """(status, "") for a 2xx, else (None, what went wrong)."""
    try:
        conn = connect(scheme, port)
        conn.request("GET", path, headers={"Host": host, "User-Agent": "deployer-health"})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
    except (OSError, http.client.HTTPException) as exc:
        return None, str(exc) or type(exc).__name__
    if 200 <= resp.status < 300:
        return resp.status, ""
    return None, "HTTP %d" % resp.status + (": %s" % last_text_line(body) if resp.status >= 500 and last_text_line(body) else "")


def last_text_line(body: bytes) -> str:
    """A 5xx body's last line of text, HTML tags dropped: often what the app said went wrong."""
    text = re.sub(r"<[^>]*>", " ", body.decode("utf-8", "replace"))
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def wait_healthy(scheme: str, port: int, host: str, path: str, deadline: float) -> Tuple[bool, str]:
    """Retry until a 2xx or ``deadline`` seconds passed: (healthy, the line to print)."""
    end = time.monotonic() + deadline
    while True:
        status, problem = attempt(scheme, port, host, path)
        if status is not None:
            return True, str(status)
        if time.monotonic() > end:
            return False, problem
        time.sleep(RETRY_EVERY)


def main(argv: List[str]) -> int:
    healthy, line = wait_healthy(argv[1], int(argv[2]), argv[3], argv[4], float(argv[5]))
    print(line)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
