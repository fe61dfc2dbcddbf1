"""A failed first deploy leaves the host as deployer found it, on every stack (recorded fake connection).

The host had no release: after a health gate that fails, the app's units are
stopped and disabled, ``current`` is gone, every proxy link the deploy made
(the app's site: the proxy's own default site answers again) is removed before
the proxy reloads, the installed configs are put back, and the release is marked
bad. tests/integration/test_deploy.py proves the same on the lab hosts.
"""

from __future__ import annotations

import json

import pytest

from deployer import hostside
from deployer.core import commands as cmd
from deployer.core import facts as facts_mod
from deployer.core.layout import Layout
from deployer.core.plan import Target, plan_host, required_links
from deployer.core.render import app_units, proxy_service, render_host
from deployer.stacks import proxy_of
from tests import factories as f
from tests.unit.test_hooks_apply import FakeRemote
from deployer.run.apply import StepRunner

STACKS = {"gunicorn": dict(server="gunicorn"), "uwsgi": dict(server="uwsgi"),
          "mod_wsgi": dict(server="mod_wsgi", proxy="apache")}
FIRST = Target("20261125T180000Z-bbbbbbbbbbbb", "bbbbbbbbbbbb", "req1", "3.11")


def fresh_facts(serving: dict[str, str]) -> dict:
    """A host deployer never touched: no user, no release, no unit of the app's (the venv cached: nothing to build); once started, ``serving``."""
    return {"python": "3.11.2", "disk_free_mb": 5000, "packages": {"python3": True, "python3-venv": True, "tar": True},
            "user": None, "current": None, "releases": [], "venvs": ["req1"], "lock": None, "files": {}, "links": {},
            "units": {}, "serving": serving, "platform": {}}


def deploy_failing_health(stack: str):
    host = f.host(**STACKS[stack])
    inv = f.inventory(host)
    files = render_host(inv, host, reveal_secrets=True)
    facts = facts_mod.parse_facts(json.dumps(fresh_facts({})))
    plan = plan_host(inv, host, FIRST, files, facts)
    release = str(Layout.of(inv.app, host).release(FIRST.release_id))
    serving = {m: release for m in plan.services + plan.daemons}

    def answer(argv):  # noqa: ANN001
        if argv[:3] == hostside.command("facts"):
            return 0, json.dumps(fresh_facts(serving))
        if argv[:3] == hostside.command("health"):
            return 1, "HTTP 500 from /healthz"
        return None

    remote = FakeRemote(host, answer)
    ctx, steps = f.deploy_steps_of(inv, plan, facts, files)
    result = StepRunner(remote, ctx, steps).apply()
    return inv, host, plan, remote, result


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_a_failed_first_deploy_leaves_the_host_as_it_was(stack: str) -> None:
    inv, host, plan, remote, result = deploy_failing_health(stack)
    layout = Layout.of(inv.app, host)
    assert plan.previous is None and result.status == "failed" and "health" in result.error
    calls = remote.calls

    # the release is marked bad (deployer releases shows '!')
    assert cmd.mark_bad(layout, FIRST.release_id, result.error[:500]) in calls
    # the app's units: enabled by the deploy, then stopped and disabled (mod_wsgi has none: its daemons
    # live in Apache and go with the site)
    units = app_units(inv.app, host)
    if units:
        disable = cmd.systemctl("disable", "--now", *units)
        assert disable in calls
        assert all(calls.index(c) < calls.index(disable) for c in calls if c[:3] == ("systemctl", "enable", "--now"))
    else:
        assert stack == "mod_wsgi" and not any(c[:2] == ("systemctl", "disable") for c in calls)
    assert ("rm", "-f", str(layout.current)) in calls
    # every proxy link the deploy made is removed (the app's site first of all), then the proxy reloads
    reload = calls.index(proxy_of(host).reload(), calls.index(("rm", "-f", str(layout.current))))
    for link in required_links(inv.app, host):
        removed = ("rm", "-f", str(link.path))
        assert removed in calls and calls.index(removed) < reload, link.path
    assert proxy_of(host).site_link(inv.app) in {link.path for link in required_links(inv.app, host)}
    # the configs it installed go back to absent, units forgotten by systemd
    restore = cmd.restore_files([c.file.path for c in plan.changes])
    assert restore in calls
    assert (cmd.systemctl("daemon-reload") in calls[calls.index(restore):]) == plan.units_changed == bool(units)
    assert calls[-1] == cmd.release_lock(layout)
    assert proxy_service(host) not in {u for c in calls if c[:2] == ("systemctl", "disable") for u in c[3:]}
