"""The release artifact: built once per deploy on the controller, uploaded to every host.

``build_artifact`` ties the layers together: the source walk (``source``), the
dependency declaration (``dependencies``), the wheel set for the hosts' interpreter
(``wheels``) and the manifest (``manifest``). Two files come out:

- the **app tarball** (``<app>-<short hash>.tar.gz``): the app's files and, at its root,
  ``.deployer/manifest.json`` (path -> sha256, size, mode; links; the wheel set);
  deterministic, so the same content gives the same bytes and the same ``content_hash``;
- the wheel-cache entry whose wheels ``venv.venv_tree`` installs into a venv tree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from deployer.artifact.dependencies import detect
from deployer.artifact.manifest import (
    Artifact, HostPython, ReleaseError, content_hash_of, host_arch, manifest_of, release_id_for, short_hash,
)
from deployer.artifact.source import atomic_write, collect_app_files, write_app_tarball
from deployer.artifact.wheels import default_cache_dir, ensure_wheels
from deployer.config.model import App


def build_artifact(app: App, *, python: str | HostPython = "3.11", cache_dir: Path | None = None,
                   now: datetime | None = None, out_dir: Path | None = None,
                   extra_requirements: Sequence[str] = ()) -> Artifact:
    """Collect the app, get its wheels (from the cache when it can), write the app tarball.

    ``extra_requirements`` are resolved with the app's own (the app server the app does
    not depend on: ``deployer.run.server_version.added``).

    ``python`` is the hosts' interpreter (``rollout.host_python``); a bare "3.11" means
    CPython 3.11 on this machine's CPU with Debian 12's glibc. ``out_dir`` (where the app
    tarball goes) defaults to ``artifacts/`` beside ``cache_dir``. Raises ``SourceError``
    (exit 2) for an unshippable source tree and ``PipError`` when pip or uv fails.
    """
    target = python if isinstance(python, HostPython) else _default_target(python)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    out_dir = Path(out_dir) if out_dir is not None else cache_dir.parent / "artifacts"
    now = now or datetime.now(timezone.utc)

    files = collect_app_files(app)  # before pip: source problems are cheap to report
    declared = detect(app)
    wheels = ensure_wheels(Path(app.source), declared, files, target=target, cache_dir=cache_dir,
                           extra=tuple(extra_requirements))
    manifest = manifest_of(files, target.minor, wheels.req_hash, wheels.wheels, [f.path for f in app.files])
    content_hash = content_hash_of(manifest)
    manifest_bytes = json.dumps({**manifest, "content_hash": content_hash}, sort_keys=True,
                                indent=1, ensure_ascii=False).encode() + b"\n"

    out_dir.mkdir(parents=True, exist_ok=True)
    tarball = out_dir / f"{app.name}-{short_hash(content_hash)}.tar.gz"
    atomic_write(tarball, lambda fh: write_app_tarball(fh, files, manifest_bytes))
    return Artifact(
        release_id=release_id_for(content_hash, now),
        content_hash=content_hash,
        app_tarball=tarball,
        req_hash=wheels.req_hash,
        wheels_dir=wheels.dir,
        wheel_names=wheels.wheels,
        python=target.minor,
        size=tarball.stat().st_size,
        target=target,
        declared=declared.label,
        instance_names=_instance_names(app) if declared.build_app else (),
    )


def _instance_names(app: App) -> tuple[str, ...]:
    """Flask puts an installed package's instance folder at ``<prefix>/var/<import name>-instance``."""
    if "instance" not in app.shared:
        return ()
    module = app.wsgi.module
    return tuple(sorted({module.split(".")[0], module}))


def _default_target(python: str) -> HostPython:
    import platform

    try:
        return HostPython(python, arch=host_arch(platform.machine()))
    except ReleaseError as exc:
        raise ReleaseError(f"python: {exc}") from None
