"""known_hosts read as OpenSSH reads it, against a real SSH server on loopback (paramiko's, in a thread).

The server refuses every login: "Authentication failed" means the client
accepted the host key; a host-key message means it refused it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from deployer.remote.ssh import ConnectError, Remote, host_matches, read_known_hosts
from tests import factories as f

HOST_KEY = paramiko.ECDSAKey.generate()
OTHER_KEY = paramiko.ECDSAKey.generate()
ACCEPTED = "Authentication failed"


class RefuseEveryone(paramiko.ServerInterface):
    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_FAILED


@contextmanager
def ssh_server() -> Iterator[int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    transports: list[paramiko.Transport] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transport.add_server_key(HOST_KEY)
            transports.append(transport)
            try:
                transport.start_server(server=RefuseEveryone())
            except (paramiko.SSHException, EOFError, OSError):
                pass

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        for transport in transports:
            transport.close()


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with ssh_server() as number:
        yield number


@pytest.fixture(scope="module")
def client_key(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("key") / "id_ed25519"
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    return path


def line(names: str, key: paramiko.PKey = HOST_KEY, marker: str = "") -> str:
    return f"{marker + ' ' if marker else ''}{names} {key.get_name()} {key.get_base64()}"


def hashed(name: str) -> str:
    salt = b"0123456789abcdefghij"
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def connect(tmp_path: Path, port: int, client_key: Path, lines: list[str], policy: str = "strict") -> str:
    known = tmp_path / "known_hosts"
    known.write_text("".join(f"{text}\n" for text in lines))
    host = f.host(address="127.0.0.1", ssh_port=port, known_hosts=known, host_key_policy=policy, ssh_key=client_key)
    remote = Remote(host, connect_timeout=5)
    try:
        remote.open()
    except ConnectError as exc:
        return str(exc)
    finally:
        remote.close()
    return "connected"


def test_a_listed_key_is_accepted(tmp_path, port, client_key) -> None:
    assert ACCEPTED in connect(tmp_path, port, client_key, [line(f"[127.0.0.1]:{port}")])


def test_a_revoked_key_is_refused_even_when_listed(tmp_path, port, client_key) -> None:
    said = connect(tmp_path, port, client_key, [line(f"[127.0.0.1]:{port}"), line("*", marker="@revoked")])
    assert "@revoked" in said and ACCEPTED not in said


def test_a_revoked_key_is_not_recorded_by_accept_new(tmp_path, port, client_key) -> None:
    said = connect(tmp_path, port, client_key, [line("*", marker="@revoked")], policy="accept-new")
    assert "@revoked" in said and ACCEPTED not in said
    assert (tmp_path / "known_hosts").read_text().count("\n") == 1


def test_accept_new_records_an_unknown_host(tmp_path, port, client_key) -> None:
    assert ACCEPTED in connect(tmp_path, port, client_key, [], policy="accept-new")
    assert (tmp_path / "known_hosts").read_text() == line(f"[127.0.0.1]:{port}") + "\n"


def test_a_wildcard_line_with_another_key_is_a_changed_key_not_a_new_one(tmp_path, port, client_key) -> None:
    said = connect(tmp_path, port, client_key, [line(f"[127.0.0.*]:{port}", OTHER_KEY)], policy="accept-new")
    assert "does not match" in said, said
    assert line(f"[127.0.0.1]:{port}") not in (tmp_path / "known_hosts").read_text()


def test_a_wildcard_line_with_the_key_is_accepted(tmp_path, port, client_key) -> None:
    assert ACCEPTED in connect(tmp_path, port, client_key, [line(f"[127.0.0.?]:{port}")])


def test_a_negated_pattern_excludes_the_line(tmp_path, port, client_key) -> None:
    said = connect(tmp_path, port, client_key, [line(f"[127.0.0.1]:{port},![127.0.0.1]:{port}")])
    assert "is not in" in said, said


def test_hashed_names_are_matched(tmp_path, port, client_key) -> None:
    assert ACCEPTED in connect(tmp_path, port, client_key, [line(hashed(f"[127.0.0.1]:{port}"))])
    assert "does not match" in connect(tmp_path, port, client_key, [line(hashed(f"[127.0.0.1]:{port}"), OTHER_KEY)])


@pytest.mark.parametrize("patterns, name, expected", [
    (("web1",), "web1", True),
    (("WEB1",), "web1", True),
    (("web*",), "web1", True),
    (("web?",), "web12", False),
    (("[10.0.0.1]:2222",), "[10.0.0.1]:2222", True),
    (("[10.0.0.1]:2222",), "1", False),  # brackets are literal, not a character class
    (("*", "!web1"), "web1", False),
    (("!web2", "web*"), "web1", True),
])
def test_host_matches_as_openssh(patterns, name, expected) -> None:
    assert host_matches(patterns, name) is expected


def test_unparseable_lines_are_skipped_and_markers_kept() -> None:
    text = "\n".join(["# comment", "", "bad line", "h ssh-unknown AAAA", line("h", marker="@revoked"), line("a,b")])
    entries = read_known_hosts(text)
    assert [(e.marker, e.patterns) for e in entries] == [("@revoked", ("h",)), (None, ("a", "b"))]
