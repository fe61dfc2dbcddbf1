"""The planner: recorded facts in, decisions out. No SSH."""

from __future__ import annotations

import json

import pytest

from deployer.core.steps import prune_releases
from deployer.core.facts import Facts, LiveFile, Release, Unit, parse_facts
from deployer.core.plan import Target, plan_host, required_links
from deployer.core.render import render_host
from tests import factories as f

TARGET = Target("20261125T170000Z-aaaaaaaaaaaa", "aaaaaaaaaaaa", "req1", "3.11")


def facts(**overrides) -> Facts:
    base = dict(python="3.11.2", disk_free_mb=5000, packages={"python3": True}, user=None, current=None,
                releases=(), venvs=(), lock=None)
    base.update(overrides)
    return Facts(**base)


def converged(inv, host, release_id="20261120T000000Z-aaaaaaaaaaaa") -> Facts:
    """Facts of a host where exactly this release and these configs already run."""
    files = render_host(inv, host, reveal_secrets=True)
    path = f"/srv/hello/releases/{release_id}"
    return facts(
        user={"uid": 998, "shell": "/usr/sbin/nologin"},
        current=release_id,
        releases=(Release(release_id, venv="req1"),),
        venvs=("req1",),
        files={str(x.path): LiveFile("x", x.mode, x.content) for x in files},
        links={str(link.path): link.target for link in required_links(inv.app, host)},
        units={u: Unit("active", "enabled", 10) for u in ("hello.socket", "hello.service", "nginx.service", "apache2.service")},
        serving={"hello.service": path, "(wsgi:hello)": path} if host.server != "mod_wsgi" else {"(wsgi:hello)": path},
    )


@pytest.mark.parametrize(("server", "proxy"), f.COMBINATIONS)
def test_converged_host_is_unchanged(server: str, proxy: str) -> None:
    host = f.host(server=server, proxy=proxy)
    inv = f.inventory(host)
    plan = plan_host(inv, host, TARGET, render_host(inv, host, reveal_secrets=True), converged(inv, host))
    assert plan.unchanged, plan
    assert plan.release_id == "20261120T000000Z-aaaaaaaaaaaa"  # the release already there is reused


def test_cold_host_gets_everything() -> None:
    host = f.host()
    inv = f.inventory(host)
    files = render_host(inv, host, reveal_secrets=True)
    plan = plan_host(inv, host, TARGET, files, facts(packages={"nginx": False, "python3": True}))
    assert plan.install_packages == ("nginx",)
    assert plan.create_user and plan.upload_release and plan.build_venv and plan.switch
    assert {c.file.path for c in plan.changes} == {x.path for x in files}
    assert plan.enable_units == ("hello.socket", "hello.service", "nginx.service")
    assert plan.restart_app and plan.reload_proxy
    assert f.whats(inv, plan, facts())[0] == "install packages: nginx"


def test_code_change_reuses_venv_and_restarts_app_only() -> None:
    host = f.host()
    inv = f.inventory(host)
    target = Target("20261125T180000Z-bbbbbbbbbbbb", "bbbbbbbbbbbb", "req1", "3.11")
    plan = plan_host(inv, host, target, render_host(inv, host, reveal_secrets=True), converged(inv, host))
    assert plan.upload_release and not plan.build_venv and plan.switch
    assert plan.restart_app and not plan.reload_proxy and not plan.changes
    assert plan.previous == "20261120T000000Z-aaaaaaaaaaaa"


NEW = Target("20261125T180000Z-bbbbbbbbbbbb", "bbbbbbbbbbbb", "req1", "3.11")
WSGI = f.host(server="mod_wsgi", proxy="apache")


def wsgi_plan(live: Facts | None = None, inv=None, target: Target = NEW):  # noqa: ANN001
    inv = inv or f.inventory(WSGI)
    return plan_host(inv, WSGI, target, render_host(inv, WSGI, reveal_secrets=True), live or converged(inv, WSGI))


def test_mod_wsgi_code_change_restarts_the_daemons_without_reloading_apache() -> None:
    """A graceful Apache reload renews the daemons' socket: requests in between get 503."""
    plan = wsgi_plan()
    assert plan.switch and plan.restart_app and not plan.reload_proxy
    assert plan.services == () and plan.daemons == ("(wsgi:hello)",)
    inv = f.inventory(WSGI)
    steps = f.whats(inv, plan, converged(inv, WSGI))
    assert "gracefully restart the mod_wsgi daemons (wsgi:hello) (SIGUSR1; apache2.service is not reloaded)" in steps
    assert not any(s.startswith(("reload", "restart")) for s in steps)


def test_mod_wsgi_env_change_restarts_the_daemons_only() -> None:
    inv = f.inventory(WSGI)
    live = converged(inv, WSGI)
    live.files["/etc/hello/env"] = LiveFile("x", 0o640, "APP_GREETING=old\n")
    plan = wsgi_plan(live, inv, TARGET)
    assert not plan.switch and plan.restart_app and not plan.reload_proxy


def test_mod_wsgi_apache_config_change_reloads_apache_which_restarts_the_daemons() -> None:
    inv = f.inventory(WSGI)
    live = converged(inv, WSGI)
    live.files["/etc/apache2/sites-available/hello.conf"] = LiveFile("x", 0o644, "# older site\n")
    plan = wsgi_plan(live, inv)
    assert plan.switch and plan.reload_proxy and not plan.restart_app
    assert "reload apache2.service" in f.whats(inv, plan, live)


@pytest.mark.parametrize("active", ["inactive", "failed"])
def test_mod_wsgi_apache_not_running_is_started_not_signalled(active: str) -> None:
    inv = f.inventory(WSGI)
    live = converged(inv, WSGI)
    live.units["apache2.service"] = Unit(active, "enabled", 0)
    del live.serving["(wsgi:hello)"]
    plan = wsgi_plan(live, inv)
    assert plan.enable_units == ("apache2.service",)
    assert not plan.restart_app and not plan.reload_proxy


def test_mod_wsgi_apache_running_without_daemons_is_reloaded() -> None:
    inv = f.inventory(WSGI)
    live = converged(inv, WSGI)
    del live.serving["(wsgi:hello)"]
    plan = wsgi_plan(live, inv, TARGET)
    assert plan.reload_proxy and not plan.restart_app and not plan.unchanged


def test_mod_wsgi_daemons_half_restarted_are_restarted() -> None:
    inv = f.inventory(WSGI)
    live = converged(inv, WSGI)
    current = live.serving["(wsgi:hello)"]
    live.serving["(wsgi:hello)"] = f"/srv/hello/releases/older and {current}"  # the facts program's "some on each"
    plan = wsgi_plan(live, inv, TARGET)
    assert not plan.switch and plan.restart_app and not plan.reload_proxy


def test_changed_env_file_restarts_app_and_diff_shows_no_secret() -> None:
    host = f.host()
    inv = f.inventory(host)
    live = converged(inv, host)
    env = "/etc/hello/env"
    live.files[env] = LiveFile("x", 0o640, "APP_SECRET_KEY=old-s3cr3t\n")
    plan = plan_host(inv, host, TARGET, render_host(inv, host, reveal_secrets=True), live)
    (change,) = plan.changes
    assert str(change.file.path) == env and plan.restart_app and not plan.switch
    diff = change.diff(tuple(inv.app.secrets.values()))
    assert "s3cr3t-Key_value" not in diff and "old-s3cr3t" not in diff and "(secret, " in diff


def test_stale_process_is_restarted_even_when_files_match() -> None:
    """A HUP does not follow a new `current` (gunicorn #394): check what actually serves."""
    host = f.host()
    inv = f.inventory(host)
    live = converged(inv, host)
    live.serving["hello.service"] = "/srv/hello/releases/older"
    plan = plan_host(inv, host, TARGET, render_host(inv, host, reveal_secrets=True), live)
    assert plan.restart_app and not plan.unchanged


def test_preflight_problems() -> None:
    host = f.host()
    inv = f.inventory(host)
    plan = plan_host(inv, host, TARGET, (), facts(python="3.7.3", disk_free_mb=10, user={"uid": 0}))
    assert any("3.9+ needed" in p for p in plan.problems)
    assert any("wheels were built for 3.11" in p for p in plan.problems)
    assert any("MB free" in p for p in plan.problems)
    assert any("root" in p for p in plan.problems)


def test_prune_keeps_current_previous_good_and_skips_bad() -> None:
    rels = tuple(Release(f"2026112{i}T000000Z-x", bad=i in (3, 5)) for i in range(1, 8))
    live = facts(current="20261127T000000Z-x", releases=rels)
    # keep 2: current (7) + previous good (6); 5 and 3 are bad; 4, 2, 1 go
    assert sorted(prune_releases(live, keep=2)) == sorted(
        ["20261125T000000Z-x", "20261124T000000Z-x", "20261123T000000Z-x", "20261122T000000Z-x", "20261121T000000Z-x"])


def test_prune_never_deletes_last_good_when_newest_are_bad() -> None:
    rels = (Release("1-a"), Release("2-b", bad=True), Release("3-c", bad=True), Release("4-d", bad=True))
    live = facts(current="1-a", releases=rels)
    assert "1-a" not in prune_releases(live, keep=2)


def test_parse_facts_roundtrip() -> None:
    doc = {"python": "3.11.2", "disk_free_mb": 100, "packages": {"nginx": True}, "user": None, "current": "r1",
           "releases": [{"id": "r1", "bad": False, "venv": "v"}], "venvs": ["v"], "lock": {"holder": "a@b"},
           "files": {"/etc/x": {"sha256": "s", "mode": 420, "content": "c"}, "/etc/y": None},
           "links": {"/l": "t"}, "units": {"nginx.service": {"active": "active", "enabled": "enabled", "pid": 3}},
           "serving": {"hello.service": "/srv/hello/releases/r1"}}
    parsed = parse_facts(json.dumps(doc))
    assert parsed.release("r1").venv == "v" and parsed.files["/etc/y"] is None
    assert parsed.units["nginx.service"].pid == 3 and parsed.lock == {"holder": "a@b"}
