"""What root does on a host whose app is hostile, on the three lab stacks.

deployer runs as root; the app user (and whatever it wrote) is not trusted. These
tests play the compromised app on the real hosts: links in shared/, `$` in hook
and exec arguments, and what a hook or exec command may do on the host.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.project import HOSTS, SECRET, Project, ssh
from tests.integration.test_hooks import exec_

pytestmark = pytest.mark.integration

SHARED = "/srv/hello/shared/instance"
AS_IS = ("$APP_SECRET_KEY", "a$$b", "${APP_GREETING}", "100%", "%n%h")

# Run as the app by a hook or `deployer exec`: the sandbox it finds itself in.
SANDBOX_PROBE = f"""
import os, tempfile
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
probe = os.path.join({SHARED!r}, "sandbox-probe")
open(probe, "w").write("x"); os.remove(probe)
tmp = tempfile.mkdtemp(prefix="deployer-sandbox-", dir="/tmp")
print("sandbox", status["NoNewPrivs"].strip(), status["Seccomp"].strip(), status["CapBnd"].strip(),
      bool(os.statvfs("/").f_flag & os.ST_RDONLY), tmp)
"""
# NoNewPrivs, Seccomp (2 already in the lab: nspawn filters), no capabilities, / read-only
SANDBOXED = ["1", "2", "0000000000000000", "True"]


@pytest.fixture(scope="module")
def project(lab, tmp_path_factory) -> Project:
    proj = Project(tmp_path_factory.mktemp("hardening"))
    code, results = proj.deploy_json()
    assert code == 0, results
    return proj


def deploy_with_hook(project: Project, argv: list[str], marker: str) -> subprocess.CompletedProcess:
    """A deploy of changed code with ``argv`` as its after_switch hook (removed again after)."""
    project.doc["app"]["hooks"]["after_switch"] = [argv]
    project.save()
    project.change_code(marker)
    try:
        result = project.deployer("deploy")
    finally:
        del project.doc["app"]["hooks"]["after_switch"]
        project.save()
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def as_app(lab, name: str, script: str) -> str:
    """What the compromised app could do itself: run as its user, not root."""
    return ssh(lab, name, "runuser", "-u", "hello", "--", "sh", "-c", script)


def test_exec_passes_dollar_and_percent_as_written(project: Project) -> None:
    result = exec_(project, "printf", "%s|\\n", *AS_IS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert SECRET not in result.stdout + result.stderr
    for name in HOSTS:
        lines = [line.split(": ", 1)[1] for line in result.stdout.splitlines() if line.startswith(f"{name}: ")]
        assert lines == [f"{arg}|" for arg in AS_IS], (name, result.stdout)


def test_hook_passes_dollar_and_percent_as_written(project: Project) -> None:
    result = deploy_with_hook(project, ["printf", "hook:%s|\\n", *AS_IS], "dollar-hook")
    assert SECRET not in result.stdout + result.stderr
    for name in HOSTS:
        shown = [line.split("after_switch> ", 1)[1] for line in result.stderr.splitlines()
                 if line.startswith(f"{name}: after_switch> ")]
        assert shown == [f"hook:{arg}|" for arg in AS_IS], (name, result.stderr)


def test_exec_runs_in_the_app_sandbox_and_can_write_shared(project: Project, lab) -> None:
    result = exec_(project, "python", "-c", SANDBOX_PROBE)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in HOSTS:
        line = next(line for line in result.stdout.splitlines() if line.startswith(f"{name}: sandbox "))
        *seen, tmp = line.split()[2:]
        assert seen == SANDBOXED, (name, line)
        assert ssh(lab, name, "sh", "-c", f"test -e {tmp} && echo visible").strip() == "", "PrivateTmp: /tmp is the host's"


def test_hook_runs_in_the_app_sandbox_and_can_write_shared(project: Project) -> None:
    result = deploy_with_hook(project, ["python", "-c", SANDBOX_PROBE], "sandbox-hook")
    for name in HOSTS:
        line = next(line for line in result.stderr.splitlines() if line.startswith(f"{name}: after_switch> sandbox "))
        assert line.split()[3:-1] == SANDBOXED, (name, line)


@pytest.mark.parametrize("victim", ["/usr/local/bin", "/srv/victim/new"])
def test_root_follows_no_link_the_app_put_in_shared(project: Project, lab, victim: str) -> None:
    """The app swaps shared/instance for a link; the next deploy must not hand the target to the app user.

    /usr/local/bin exists (root's PATH); /srv/victim/new does not (root would create it, owned by the app).
    """
    for name in HOSTS:
        ssh(lab, name, "sh", "-c", "mkdir -p /srv/victim && chmod 0755 /srv/victim")
        as_app(lab, name, f"mv {SHARED} {SHARED}.real && ln -s {victim} {SHARED}")
        assert ssh(lab, name, "readlink", SHARED).strip() == victim, name
    project.change_code(f"link-attack-{victim}")
    try:
        result = project.deployer("deploy")
        for name in HOSTS:
            owner = ssh(lab, name, "sh", "-c", f"stat -c '%U %a' {victim} 2>/dev/null || echo absent").strip()
            assert owner in ("root 755", "absent"), (name, owner, result.stderr)
    finally:
        for name in HOSTS:
            as_app(lab, name, f"rm -f {SHARED} && mv {SHARED}.real {SHARED}")
            ssh(lab, name, "rm", "-rf", "/srv/victim")
            ssh(lab, name, "rm", "-rf", "/srv/hello/.deployer/lock")
    assert result.returncode != 0, "a deploy into an app that replaced its shared dir should fail loudly"
    assert "shared/instance" in result.stdout + result.stderr
