"""What root does on the host, with the app (and all it can write) taken as hostile: the command builders.

The lab proves the same on real hosts (tests/integration/test_hardening.py).
"""

from __future__ import annotations

import dataclasses
import json
import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path, PurePosixPath

import pytest

from deployer.core import commands as cmd
from deployer.config.model import Hooks
from deployer.core.facts import Release, Unit, drift, facts_command
from deployer.core.layout import Layout
from deployer.core.release_env import ReleaseEnv, in_release
from deployer.core.render import render_host, sandbox_properties
from tests import factories as f
from tests.unit.test_hooks_apply import FakeRemote, applier
from tests.unit.test_hooks_pure import plans_for
from tests.unit.test_plan import converged

LAYOUT = Layout("hello", PurePosixPath("/srv"))
UNIT = "hello-exec-0123456789ab.service"


# -- finding 3: no root command follows a link in a directory the app can write -----------


def test_prepare_dirs_creates_the_shared_paths_as_the_app_user() -> None:
    link = ("instance/config.py", PurePosixPath("/etc/hello/files/instance/config.py"))
    command = cmd.prepare_dirs(LAYOUT, "hello", "deploy", ("instance", "pkg/static/.webassets-cache"), (link,))
    assert command[:2] == ("sh", "-c") and command[3:] == (
        "sh", "/srv/hello", "hello", "deploy", "2", "instance", "pkg/static/.webassets-cache",
        "instance/config.py", "/etc/hello/files/instance/config.py")
    script = command[2].splitlines()
    under_shared = [line for line in script if "$root/shared/" in line]
    assert len(under_shared) == 2, under_shared
    assert all('runuser -u "$user" --' in line for line in under_shared), "root itself must not touch a path under shared/"


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


@contextlib.contextmanager
def sandbox_root():
    """A deploy root in a temp dir (0755) with a root-owned ``victim`` dir beside it, removed after."""
    base = Path(tempfile.mkdtemp(prefix="deployer-hardening-"))
    try:
        base.chmod(0o755)
        (base / "victim").mkdir(mode=0o755)
        yield base, Layout("hello", PurePosixPath(base)), base / "victim"
    finally:
        shutil.rmtree(base)


@pytest.mark.skipif(_can_run_as_another_user() is not None, reason="needs root and runuser")
def test_nested_shared_paths_and_file_links_are_made_by_the_app_user_and_no_further() -> None:
    """A nested shared path and an app.files link under shared/: the app's, and a planted parent link stops it."""
    with sandbox_root() as (base, layout, victim):
        nested, links = ("instance", "pkg/static/.webassets-cache"), (("instance/config.py", PurePosixPath("/etc/x")),)
        first = subprocess.run(cmd.prepare_dirs(layout, "daemon", "root", nested, links), capture_output=True, text=True)
        assert first.returncode == 0, first.stderr
        shared = base / "hello" / "shared"
        cache, config = shared / "pkg" / "static" / ".webassets-cache", shared / "instance" / "config.py"
        assert [(p.lstat().st_uid, oct(p.lstat().st_mode & 0o777)) for p in (shared / "pkg", cache)] == [(1, "0o755"), (1, "0o750")]
        assert config.is_symlink() and os.readlink(config) == "/etc/x" and config.lstat().st_uid == 1
        shutil.rmtree(shared / "pkg")
        (shared / "pkg").symlink_to(victim)  # the app plants a link where a nested path's parent was
        again = subprocess.run(cmd.prepare_dirs(layout, "daemon", "root", nested, links), capture_output=True, text=True)
        assert again.returncode != 0
        assert list(victim.iterdir()) == [] and victim.stat().st_uid == 0


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


# -- the lock is taken after the facts are read: what the plan rests on is read again under it --


def facts_json(facts) -> str:  # noqa: ANN001
    return json.dumps(dataclasses.asdict(facts))


def answering_facts(facts):  # noqa: ANN001, ANN201
    """A FakeRemote answer: these facts to the facts program, success to everything else."""
    program = facts_command(LAYOUT, user="hello", packages=(), files=(), links=(), units=())[:-1]  # all but the query
    return lambda argv: (0, facts_json(facts)) if argv[:-1] == program else None


def rechecked(now, *, apply: bool = True):  # noqa: ANN001, ANN201
    """A plan made on converged facts; ``now(facts)`` is what the host says once the lock is held."""
    inv, plans = plans_for("web1", hooks=Hooks())
    host = inv.host("web1")
    remote = FakeRemote(host, answering_facts(now(converged(inv, host))))
    runner = applier("web1", plans["web1"], remote, inv, facts=converged(inv, host))
    return (runner.apply() if apply else runner.recheck()), remote, plans["web1"]


def test_a_deploy_that_ran_between_plan_and_lock_stops_this_one_before_anything() -> None:
    result, remote, plan = rechecked(lambda facts: dataclasses.replace(
        facts, current="20261201T000000Z-cccccccccccc", releases=facts.releases + (Release("20261201T000000Z-cccccccccccc"),)))
    assert result.status == "failed"
    assert result.error == ("lock: the host changed after it was planned (current, releases: another deploy?); "
                            "nothing was done, run again")
    assert not any("prepare" in str(c) or "install -d" in " ".join(c) for c in remote.calls)
    assert remote.sent(cmd.release_lock(plan.layout))


def test_what_changes_on_its_own_is_no_reason_to_stop() -> None:
    rechecked(lambda facts: dataclasses.replace(
        facts, disk_free_mb=facts.disk_free_mb - 1, serving={}, lock={"holder": "us"},
        units={name: Unit("activating", unit.enabled, 0) for name, unit in facts.units.items()}), apply=False)


def test_drift_names_what_the_plan_rests_on() -> None:
    inv = f.inventory(f.host())
    before = converged(inv, inv.hosts[0])
    assert drift(before, before) == ()
    assert drift(before, dataclasses.replace(before, venvs=())) == ("venvs",)
    disabled = {name: Unit(u.active, "disabled", u.pid) for name, u in before.units.items()}
    assert drift(before, dataclasses.replace(before, units=disabled)) == ("units",)


def test_mark_bad_never_creates_a_release_dir(tmp_path: Path) -> None:
    layout = Layout("hello", PurePosixPath(tmp_path))
    subprocess.run(cmd.mark_bad(layout, "r1", "failed early"), check=True)
    assert not (tmp_path / "hello" / "releases" / "r1").exists()
    (tmp_path / "hello" / "releases" / "r2").mkdir(parents=True)
    subprocess.run(cmd.mark_bad(layout, "r2", "health"), check=True)
    assert (tmp_path / "hello" / "releases" / "r2" / ".deployer" / "BAD").read_text() == "health\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (tar --no-same-owner, the host's unpack)")
def test_unpack_links_nested_shared_paths_and_app_files_inside_the_fresh_release() -> None:
    """Root makes each link in ``<id>.partial`` only, under the release's own directories."""
    with sandbox_root() as (base, layout, _victim):
        src = base / "src" / "gallery" / "static"
        src.mkdir(parents=True)
        (src / "site.css").write_text("a {}\n")
        (base / "hello" / "releases").mkdir(parents=True)
        tarball = base / "app.tar.gz"
        subprocess.run(["tar", "-czf", str(tarball), "-C", str(base / "src"), "."], check=True)
        files = (("settings.cfg", PurePosixPath("/etc/hello/files/settings.cfg")),)
        command = cmd.unpack_release(layout, "r1", PurePosixPath(tarball), "req1",
                                     ("instance", "gallery/static/.webassets-cache"), files)
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        release = base / "hello" / "releases" / "r1"
        links = {str(p.relative_to(release)): os.readlink(p) for p in release.rglob("*") if p.is_symlink()}
        assert links == {".venv": "../../venvs/req1", "instance": f"{base}/hello/shared/instance",
                         "gallery/static/.webassets-cache": f"{base}/hello/shared/gallery/static/.webassets-cache",
                         "settings.cfg": "/etc/hello/files/settings.cfg"}
        assert (release / "gallery" / "static").stat().st_uid == 0 and not (base / "hello" / "shared").exists()
