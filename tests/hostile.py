"""A project directory for hostile-input tests: an app, a PEM certificate and key beside the inventory.

Shared by the config hardening tests and the adversarial suite, so both load
inventories from the same place with the same files around them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path as the working directory, with app/ (static/, requirements.txt), cert.pem, key.pem."""
    (tmp_path / "app" / "static").mkdir(parents=True)
    (tmp_path / "app" / "requirements.txt").write_text("flask\n")
    (tmp_path / "cert.pem").write_text(CERT)
    (tmp_path / "key.pem").write_text(KEY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEPLOYER_TLS_DIRS", raising=False)
    return tmp_path
