"""The connection seam: the Connector protocol, fan_out's typed outcomes, the fake host, Session over it."""

from __future__ import annotations

import inspect
import json
import threading
import time

import pytest

from deployer.core import commands as cmd
from deployer.core.layout import Layout
from deployer.errors import DeployerError
from deployer.remote.connector import CommandFailed, Connector
from deployer.remote.fake import FakeConnector, FakeFleet, HostState
from deployer.remote.fanout import Failed, Ok, fan_out
from deployer.remote.ssh import Remote
from deployer.run.apply import gather_facts
from deployer.run.rollout import Session
from deployer.secret import Secret
from tests import factories as f

PROTOCOL = [name for name, _ in inspect.getmembers(Connector, inspect.isfunction) if not name.startswith("_")]


@pytest.mark.parametrize("implementation", [Remote, FakeConnector])
def test_both_connectors_provide_the_whole_protocol_with_its_signatures(implementation) -> None:  # noqa: ANN001
    assert set(PROTOCOL) == {"open", "close", "run", "open_stream", "upload", "download", "cleanup"}
    for name in PROTOCOL:
        wanted = inspect.signature(getattr(Connector, name))
        got = inspect.signature(getattr(implementation, name))
        assert list(got.parameters) == list(wanted.parameters), name
        assert [p.kind for p in got.parameters.values()] == [p.kind for p in wanted.parameters.values()], name


# -- fan_out ------------------------------------------------------------------


def test_fan_out_keeps_order_and_types_each_outcome() -> None:
    def work(n: int) -> int:
        if n == 2:
            raise DeployerError("two is bad")
        time.sleep(0.01 * (5 - n))  # finish out of order
        return n * 10

    outcomes = fan_out([1, 2, 3, 4], work)
    assert [type(o) for o in outcomes] == [Ok, Failed, Ok, Ok]
    assert [o.value for o in outcomes if o.ok] == [10, 30, 40]
    assert outcomes[1].item == 2 and outcomes[1].message == "two is bad"


def test_fan_out_runs_in_parallel_up_to_the_limit() -> None:
    active, peak, lock = [0], [0], threading.Lock()

    def work(_: int) -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1

    fan_out(range(6), work, parallel=3)
    assert peak[0] == 3
    fan_out(range(4), work, parallel=1)
    assert peak[0] == 3 and fan_out([], work) == []


def test_fan_out_lets_other_errors_through_unless_caught() -> None:
    def boom(_: int) -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        fan_out([1], boom)
    (outcome,) = fan_out([1], boom, catch=(Exception,))
    assert not outcome.ok and outcome.message == "KeyError: 'bug'"


# -- the fake host ---------------------------------------------------------------


def fake(state: HostState | None = None) -> FakeConnector:
    return FakeConnector(f.host(), (Secret("hunter2"),), state or HostState())


def test_fake_records_argv_masks_output_and_raises_like_the_real_one() -> None:
    remote = fake()
    remote.state.answer(lambda argv: argv[0] == "echo", 0, "pw=hunter2\n")
    lines = []
    assert remote.run(("echo", "x"), on_line=lines.append).stdout == "pw=***\n"
    assert lines == ["pw=***"]
    assert remote.run(("echo", "x"), mask=False).stdout == "pw=hunter2\n"
    with pytest.raises(CommandFailed, match="nosuch exited 127: fake host: no answer"):
        remote.run(("nosuch",))
    assert remote.state.calls == [("echo", "x"), ("echo", "x"), ("nosuch",)]


def test_fake_lock_is_taken_once_and_released() -> None:
    remote, layout = fake(), Layout("hello", f.host().deploy_root)
    assert remote.run(cmd.take_lock(layout, {"holder": "a"}), check=False).ok
    second = remote.run(cmd.take_lock(layout, {"holder": "b"}), check=False)
    assert not second.ok and "File exists" in second.stderr
    assert json.loads(remote.run(("cat", str(layout.state_dir / "lock" / "info"))).stdout) == {"holder": "a"}
    remote.run(cmd.release_lock(layout))
    assert remote.state.lock is None


def test_fake_answers_the_facts_program_from_its_state() -> None:
    inv = f.inventory(f.host())
    state = HostState(current="r2", user={"uid": 998, "shell": "/usr/sbin/nologin", "home": "/srv/hello"})
    state.missing_packages.add("nginx")
    remote = FakeConnector(inv.hosts[0], (), state)
    facts = gather_facts(remote, inv, ())
    assert facts.current == "r2" and facts.user["uid"] == 998
    assert facts.missing_packages() == ("nginx",)
    assert facts.units["nginx.service"].active == "inactive" and facts.lock is None


def test_fake_install_backup_restore_round_trip() -> None:
    remote = fake(HostState())
    staged = remote.upload(b"new\n", "file0")
    remote.run(cmd.backup_files(["/etc/x"]))
    remote.run(cmd.install_files([("0644", "root", "root", staged, "/etc/x")]))
    assert remote.state.files["/etc/x"].content == "new\n"
    remote.run(cmd.restore_files(["/etc/x"]))
    assert "/etc/x" not in remote.state.files


def test_fake_unreachable_host_refuses_to_open() -> None:
    with pytest.raises(DeployerError, match="web1: cannot connect to 198.18.0.11:22: refused"):
        fake(HostState(unreachable="refused")).open()


# -- Session over any connector ---------------------------------------------------


def test_session_connects_through_the_given_factory_and_keeps_each_hosts_error() -> None:
    inv = f.inventory(f.host("web1"), f.host("web2"), f.host("web3"))
    fleet = FakeFleet(web2=HostState(unreachable="no route"))
    with Session(inv, inv.hosts, fleet.connect) as session:
        assert [r.host.name for r in session.connected()] == ["web1", "web3"]
        assert session.errors == {"web2": "web2: cannot connect to 198.18.0.11:22: no route"}
        assert session.remotes["web1"].secrets == (inv.app.secrets["APP_SECRET_KEY"],)
        outcomes = session.each(lambda remote: remote.run(("cat", "/nope")))
        assert list(outcomes) == ["web1", "web3"]
        assert all(not o.ok and "cat /nope exited 1" in o.message for o in outcomes.values())
    assert (fleet["web1"].opened, fleet["web1"].closed, fleet["web2"].closed) == (1, 1, 1)
