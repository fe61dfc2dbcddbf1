"""Helpers for tests that run the real config checkers (nginx, apache2, systemd-analyze).

A missing checker skips its tests, except under CI=true, where it fails them:
CI installs every checker (scripts/install-system-deps), so absence is a bug.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from deployer.core.render import RenderedFile, TlsMaterial
from deployer.secret import Secret


def need(program: str) -> str:
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if path is None:
        message = f"{program} is not installed (apt: see scripts/install-system-deps)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def run(*argv: str | Path, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=120, **kwargs)


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory) -> TlsMaterial:
    """A throwaway self-signed EC certificate for web1.lab.example."""
    openssl = need("openssl")
    d = tmp_path_factory.mktemp("tls")
    result = run(
        openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", d / "key.pem", "-out", d / "cert.pem", "-days", "2",
        "-subj", "/CN=web1.lab.example", "-addext", "subjectAltName=DNS:web1.lab.example,DNS:www.web1.lab.example",
    )
    assert result.returncode == 0, result.stderr
    return TlsMaterial(cert=(d / "cert.pem").read_text(), key=Secret((d / "key.pem").read_text()))


def materialize(files: tuple[RenderedFile, ...], root: Path, app: str = "hello") -> dict[str, Path]:
    """Write rendered files under ``root`` (mirroring their target paths).

    References to the app's /etc/<app>/ files inside the configs are pointed at
    the copies under ``root``, so a checker that opens them (certificates) finds them.
    """
    written = {}
    for file in files:
        target = root / file.path.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        content = file.content
        if file.check:
            content = content.replace(f"/etc/{app}/", f"{root}/etc/{app}/")
        target.write_text(content)
        written[str(file.path)] = target
    return written
