"""What root does on the host, with the app (and all it can write) taken as hostile: the command builders.

The lab proves the same on real hosts (tests/integration/test_hardening.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path, PurePosixPath

import pytest

from deployer.core import commands as cmd
from deployer.core.layout import Layout
from deployer.core.release_env import ReleaseEnv, in_release
from deployer.core.render import render_host, sandbox_properties
from tests import factories as f

LAYOUT = Layout("hello", PurePosixPath("/srv"))
UNIT = "hello-exec-0123456789ab.service"


# -- finding 3: no root command follows a link in a directory the app can write -----------


def test_prepare_dirs_creates_the_shared_paths_as_the_app_user() -> None:
    command = cmd.prepare_dirs(LAYOUT, "hello", "deploy", ("instance", "uploads/images"))
    assert command[:2] == ("sh", "-c") and command[3:] == ("sh", "/srv/hello", "hello", "deploy", "instance", "uploads/images")
    script = command[2].splitlines()
    assert script[-1] == 'for p in "$@"; do runuser -u "$user" -- install -d -m 0750 "$root/shared/$p"; done'
    under_shared = [line for line in script if "$root/shared/" in line]
    assert under_shared == [script[-1]], "root itself must not touch a path under shared/"


def _can_run_as_another_user() -> str | None:
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        return "needs root and runuser"
    return None


@pytest.mark.skipif(_can_run_as_another_user() is not None, reason="needs root and runuser")
def test_prepare_dirs_does_not_hand_a_linked_target_to_the_app() -> None:
    """Locally, as root, with ``daemon`` as the app user: a link in shared/ to a root-owned dir stays root's."""
    base = Path(tempfile.mkdtemp(prefix="deployer-hardening-"))
    try:
        base.chmod(0o755)
        layout = Layout("hello", PurePosixPath(base))
        victim = base / "victim"
        victim.mkdir(mode=0o755)
        first = subprocess.run(cmd.prepare_dirs(layout, "daemon", "root", ("instance",)), capture_output=True, text=True)
        assert first.returncode == 0, first.stderr
        shared = base / "hello" / "shared" / "instance"
        assert (shared.stat().st_uid, oct(shared.stat().st_mode & 0o777)) == (1, "0o750")
        shared.rmdir()
        shared.symlink_to(victim)
        again = subprocess.run(cmd.prepare_dirs(layout, "daemon", "root", ("instance",)), capture_output=True, text=True)
        assert again.returncode != 0 and "shared/instance" in again.stderr
        assert (victim.stat().st_uid, oct(victim.stat().st_mode & 0o777)) == (0, "0o755")
    finally:
        shutil.rmtree(base)


# -- finding 11: hook and exec arguments reach the command as written ---------------------

ENV = ReleaseEnv(PurePosixPath("/srv/hello/releases/r1"), "hello", PurePosixPath("/etc/hello/env"))


def test_in_release_escapes_dollar_for_systemd() -> None:
    """systemd expands $VAR, ${VAR} and $$ in ExecStart; $$ is its literal $. % is left alone (no specifiers)."""
    argv = ("printf", "%s|\\n", "$APP_SECRET_KEY", "a$$b", "${APP_GREETING}", "100%")
    command = in_release(ENV, argv, unit=UNIT)
    assert command[command.index("/usr/bin/env"):] == (
        "/usr/bin/env", "--", "printf", "%s|\\n", "$$APP_SECRET_KEY", "a$$$$b", "$${APP_GREETING}", "100%")


def test_in_release_escapes_only_the_command() -> None:
    command = in_release(ENV, ("true",), unit=UNIT)
    assert not any("$$" in arg for arg in command)


# -- hooks and exec get the app service's sandbox ------------------------------------------


def test_sandbox_properties_are_the_app_services_hardening() -> None:
    inv = f.inventory(f.host(server="gunicorn", proxy="nginx"))
    host = inv.hosts[0]
    props = sandbox_properties(inv, host)
    unit = next(r.content for r in render_host(inv, host) if r.path.name == "hello.service")
    in_unit = {line for line in unit.splitlines() if line and not line.startswith("#")}
    assert "NoNewPrivileges=yes" in props and "ProtectSystem=strict" in props and "PrivateTmp=yes" in props
    assert "ReadWritePaths=/srv/hello/shared" in props
    assert "SystemCallFilter=~@privileged @resources" in props
    assert set(props) == {p for p in in_unit if p.split("=", 1)[0] in {q.split("=", 1)[0] for q in props}}
    assert set(props) | {"RemoveIPC=yes"} <= in_unit
    assert not any(p.startswith("RemoveIPC") for p in props)


def test_sandbox_applies_to_mod_wsgi_hosts_too() -> None:
    inv = f.inventory(f.host(server="mod_wsgi", proxy="apache"))
    assert "NoNewPrivileges=yes" in sandbox_properties(inv, inv.hosts[0])


def test_in_release_passes_the_sandbox_as_unit_properties() -> None:
    env = ReleaseEnv(ENV.release_dir, ENV.user, ENV.env_file, ("NoNewPrivileges=yes", "ProtectSystem=strict"))
    command = in_release(env, ("true",), unit=UNIT)
    props = [command[i + 1] for i, arg in enumerate(command) if arg == "-p"]
    assert props[-2:] == ["NoNewPrivileges=yes", "ProtectSystem=strict"]
