"""A first deploy that fails leaves each lab host as deployer found it (all three stacks).

The example app's health route answers 500 from the start: nothing ever ran there,
so there is nothing to roll back to. Afterwards the app's units are stopped and
disabled (mod_wsgi: no daemon of the app's left in Apache), the proxy's own default
site answers again, and ``deployer releases`` marks the release bad (``!``).
"""

from __future__ import annotations

import pytest

from deployer.config.inventory import load_inventory
from deployer.core.plan import process_marker
from deployer.core.render import app_units
from tests.integration.project import HOSTS, Project, get, ssh

pytestmark = pytest.mark.integration


def front_page(address: str) -> tuple[int, str] | None:
    """What the host's port 80 answers for ``/`` (None: nothing listens yet)."""
    try:
        return get(address, "/")
    except OSError:
        return None


def test_failed_first_deploy_leaves_the_host_as_it_found_it(lab, tmp_path) -> None:
    project = Project(tmp_path)
    app_py = project.root / "app" / "app.py"
    source = app_py.read_text()
    assert 'return "ok\\n", 200' in source
    app_py.write_text(source.replace('return "ok\\n", 200', 'return "not yet\\n", 500'))
    before = {name: front_page(address) for name, address in HOSTS.items()}
    code, results = project.deploy_json()
    assert code == 1 and {r["status"] for r in results.values()} == {"failed"}, results
    assert all(r.get("previous") is None for r in results.values()), results

    inventory = load_inventory(project.inventory)
    for host in inventory.hosts:
        units = app_units(inventory.app, host)
        if units:
            active = ssh(lab, host.name, "systemctl", "is-active", *units).split()
            assert active == ["inactive"] * len(units), (host.name, active)
            # disabled: no unit of the app's wanted by any target (their unit files are gone too:
            # is-enabled then says nothing on stdout)
            enabled = ssh(lab, host.name, "systemctl", "is-enabled", *units).split()
            assert set(enabled) <= {"disabled"}, (host.name, enabled)
            wants = ssh(lab, host.name, "sh", "-c", "ls /etc/systemd/system/*.wants/ 2>/dev/null")
            assert not [u for u in units if u in wants.split()], (host.name, wants)
        for marker in process_marker(inventory.app, host):
            assert marker not in ssh(lab, host.name, "ps", "-eo", "args"), (host.name, marker)
        status, body = get(host.address, "/")
        # the proxy's own default site: as before the deploy (or, if the deploy installed the
        # proxy, the page its package ships: the lab's images serve Debian's "It works" page)
        if before[host.name] is not None:
            assert (status, body) == before[host.name], (host.name, status, body[:300])
        assert status == 200 and "Default Page" in body, (host.name, status, body[:300])
        assert ssh(lab, host.name, "sh", "-c", "test -e /srv/hello/current && echo current").strip() == "", host.name
    releases = project.deployer("releases").stdout
    assert releases.count("!") >= len(HOSTS), releases
