"""Issue 11, items 2 and 6-9: each hostile input that got through, now refused at its line.

Every test here failed before the fix it names (zone ids in nginx/Apache, YAML
that hung or crashed, YAML 1.1 readings, the secrets file's Unicode line
breaks, reserved names, deploy_root, tls paths, surrogates, forged lines).
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from deployer.config.inventory import load_inventory
from deployer.core.guard import UnsafeValue, check_context
from deployer.core.render import render_host
from deployer.errors import InventoryError
from tests import factories
from tests.hostile import CERT, project  # noqa: F401 (a fixture)
from tests.unit.test_inventory import BASE


def write(project: Path, text: str | bytes, name: str = "inv.yml") -> Path:
    path = project / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(project: Path, text: str | bytes) -> list[str]:
    with pytest.raises(InventoryError) as info:
        load_inventory(write(project, text))
    return [str(p) for p in info.value.problems]


def on_host(settings: str) -> str:
    return BASE.replace("{address: 203.0.113.10}", "{address: 203.0.113.10, " + settings + "}")


def with_env(env: str) -> str:
    return BASE.replace("  wsgi: app:app\n", f"  wsgi: app:app\n  env: {env}\n")


# -- 2: IPv6 zone ids, hostnames per RFC 1123, the render-time guard ----------------------


@pytest.mark.parametrize("value", [
    '"::1%eth0"',
    '"fe80::1%x;}\\n    CustomLog \\"|id>pwned\\" common\\n#"',
    '"::1%{"',
])
@pytest.mark.parametrize("key", ["address", "server_name"])
def test_ipv6_zone_id_is_refused(project: Path, key: str, value: str) -> None:
    text = (BASE.replace("{address: 203.0.113.10}", f"{{address: {value}}}") if key == "address"
            else on_host(f"server_name: {value}"))
    (message,) = problems(project, text)
    assert message.startswith(f"inv.yml:8: groups/web/hosts/web1/{key}: expected ")
    assert "\n" not in message


@pytest.mark.parametrize("name", [
    "a" * 64 + ".example.com",              # a label over 63
    ".".join(["abcdefghi"] * 26),           # 259 characters in all
    "10.0.0.256",                           # all-digit last label: no name, no address
    "-a.example.com", "a-.example.com", "a_b.example.com", "ex\u0430mple.com",
])
def test_server_name_must_be_an_rfc1123_hostname(project: Path, name: str) -> None:
    (message,) = problems(project, on_host(f"server_name: {name!r}"))
    assert "server_name: expected a hostname or a list of hostnames" in message


def test_names_are_normalized(project: Path) -> None:
    inventory = load_inventory(write(project, on_host("server_name: [WWW.Example.COM, '*.Example.com', '2001:DB8::1']")))
    assert inventory.hosts[0].server_names == ("www.example.com", "*.example.com", "2001:db8::1")


@pytest.mark.parametrize(("field", "value"), [
    ("server_names", ("a.example; include /etc/passwd",)),
    ("address", "::1%\n}\nCustomLog \"|id\" common"),
    ("deploy_root", Path("/srv/a b")),
    ("client_max_body_size", "1m;"),
])
def test_render_refuses_a_value_the_validator_did_not_see(field: str, value: object) -> None:
    host = factories.host(**{field: value})
    with pytest.raises(UnsafeValue) as info:
        render_host(factories.inventory(host), host)
    assert info.value.exit_code == 2


def test_render_refuses_a_control_character_in_an_env_value() -> None:
    inventory = factories.inventory(app_=factories.app(env={"A": "x\x1b]0;pwned\a"}))
    with pytest.raises(UnsafeValue, match="not shown"):
        render_host(inventory, inventory.hosts[0])


def test_guard_walks_mappings_and_skips_helpers() -> None:
    with pytest.raises(UnsafeValue):
        check_context({"options": {"bind": "unix:/run/x.sock;evil"}})
    with pytest.raises(UnsafeValue):
        check_context({"options": {"a b": "1"}})
    assert check_context({"helper": len, "ratio": 1.5, "options": {"bind": "unix:/run/x.sock"}})


def test_render_accepts_every_benign_combination() -> None:
    for server, proxy in factories.COMBINATIONS:
        host = factories.host(server=server, proxy=proxy)
        assert render_host(factories.inventory(host), host)


# -- 6: YAML that hung or crashed -------------------------------------------------------

BOMB = "lol: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"l{i}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))


@pytest.mark.parametrize(("text", "line", "words"), [
    (BOMB, 0, "alias bomb"),
    ("app: &a\n  name: *a\n", 2, "recursive alias"),
    ("a: &a {<<: *a}\n", 1, "recursive alias"),
    ("app:\n  name:\n    " + "- " * 3000 + "x\n", 3, "nested deeper than"),
    ("app: " + "[" * 3000 + "]" * 3000 + "\n", 1, "nested deeper than"),
    (BASE + "defaults:\n  <<: 5\n", 10, "'<<' merges a mapping"),
    (BASE + "x: !!python/object/apply:os.system [id]\n", 9, "tags are not allowed"),
    (BASE.replace("app:app", "!vault |\n    $ANSIBLE_VAULT;1.1"), 4, "tags are not allowed"),
    (BASE.replace("203.0.113.10}", "203.0.113.10, ssh_port: " + "9" * 5000 + "}"), 8, "a number of 5000 characters"),
    (BASE + "hosts: {db1: {address: 2024-13-45}}\n", 9, "quote it: '2024-13-45'"),
])
def test_hostile_yaml_is_a_located_problem_in_good_time(project: Path, text: str, line: int, words: str) -> None:
    start = time.monotonic()
    (message,) = problems(project, text)
    assert time.monotonic() - start < 5
    assert words in message
    assert message.startswith(f"inv.yml:{line}:" if line else "inv.yml:")


# -- 7: YAML 1.1 readings never change a value silently --------------------------------


@pytest.mark.parametrize(("written", "reading"), [
    ("01234", "668"), ("NO", "False"), ("yes", "True"), ("off", "False"), ("1.10", "1.1"),
    ("1:30", "90"), ("0640", "416"), ("0x1F", "31"), ("1_000", "1000"), ("2024-01-02", "2024"), (".inf", "inf"),
])
def test_env_value_that_yaml_would_change_is_refused_with_quote_it(project: Path, written: str, reading: str) -> None:
    (message,) = problems(project, with_env(f"{{ZIP: {written}}}"))
    assert message.startswith("inv.yml:5: ")
    assert f"quote it: '{written}'" in message and reading in message


def test_hook_argument_0640_is_refused_not_run_as_416(project: Path) -> None:
    text = BASE.replace("  wsgi: app:app\n", "  wsgi: app:app\n  hooks:\n    after_switch:\n      - [chmod, 0640, instance/db]\n")
    (message,) = problems(project, text)
    assert message.startswith("inv.yml:7: ") and "quote it: '0640'" in message


def test_become_yes_is_refused_true_is_not(project: Path) -> None:
    (message,) = problems(project, on_host("become: yes"))
    assert "quote it: 'yes'" in message
    assert load_inventory(write(project, on_host("become: true"))).hosts[0].become is True


def test_values_are_exactly_what_the_file_says(project: Path) -> None:
    text = with_env("{ZIP: '01234', PORT: 8080, DEBUG: True, RATIO: 1.5, COUNTRY: 'NO', NO: 'key as written'}")
    text = text.replace("  wsgi: app:app\n", "  wsgi: app:app\n  hooks: {after_switch: [[chmod, '0640', x, 7]]}\n")
    app = load_inventory(write(project, text)).app
    assert app.env == {"ZIP": "01234", "PORT": "8080", "DEBUG": "True", "RATIO": "1.5", "COUNTRY": "NO",
                       "NO": "key as written"}
    assert app.hooks.after_switch[0].argv == ("chmod", "0640", "x", "7")


# -- 8: the secrets file -----------------------------------------------------------------


def secrets_problems(project: Path, body: str) -> list[str]:
    (project / "secrets.env").write_bytes(body.encode("utf-8"))
    return problems(project, BASE.replace("  wsgi: app:app\n", "  wsgi: app:app\n  secrets: secrets.env\n"))


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x85", "\x1c", "\x0b", "\x0c", "\r"])
def test_secrets_line_is_split_on_newline_only(project: Path, sep: str) -> None:
    found = secrets_problems(project, f"A=1\nTOKEN=abc{sep}LD_PRELOAD=/tmp/x.so\n")
    assert found == [f"secrets.env:2: character U+{ord(sep):04X} is not allowed (the value is not shown)"]


@pytest.mark.parametrize("body", ["TOKEN=a\x1b[2Jb\n", "TOKEN='a\x00b'\n", "TO\x7fKEN=x\n"])
def test_secrets_control_characters_are_refused(project: Path, body: str) -> None:
    (message,) = secrets_problems(project, body)
    assert message.startswith("secrets.env:1: character U+") and "a" not in message.split("U+")[0][-3:]


def test_secrets_tab_crlf_and_a_bom_are_fine(project: Path) -> None:
    (project / "secrets.env").write_bytes("\ufeffA=x\ty\r\nB='q'\r\n".encode())
    app = load_inventory(write(project, BASE.replace("  wsgi: app:app\n", "  wsgi: app:app\n  secrets: secrets.env\n"))).app
    assert {k: v.reveal() for k, v in app.secrets.items()} == {"A": "x\ty", "B": "q"}


# -- 9: names, deploy_root, tls files, encodings, forged lines ---------------------------


@pytest.mark.parametrize("name", ["ssh", "www-data", "root", "nginx", "apache2", "systemd-networkd",
                                  "postgres", "nobody", "default", "default-ssl", "dbus-broker"])
def test_reserved_app_name_is_refused(project: Path, name: str) -> None:
    (message,) = problems(project, BASE.replace("name: hello", f"name: {name}"))
    assert message.startswith("inv.yml:2: app/name: expected a name of the app's own")


@pytest.mark.parametrize("root", ["/", "/tmp", "/tmp/x", "/etc", "/usr", "/usr/local/apps", "/var", "/var/tmp",
                                  "/var/log/apps", "/home", "/home/deploy", "/root", "/proc", "/run/x", "/dev/shm/x"])
def test_deploy_root_must_be_a_dedicated_directory(project: Path, root: str) -> None:
    (message,) = problems(project, on_host(f"deploy_root: {root}"))
    assert message.startswith("inv.yml:8: groups/web/hosts/web1/deploy_root: expected a dedicated directory")


@pytest.mark.parametrize("root", ["/srv", "/opt/apps", "/var/www", "/var/lib/apps", "/data/apps"])
def test_deploy_root_accepted(project: Path, root: str) -> None:
    assert str(load_inventory(write(project, on_host(f"deploy_root: {root}"))).hosts[0].deploy_root) == root


@pytest.mark.parametrize("cert", ["/etc/shadow", "~/.ssh/id_ed25519", "../outside.pem", "/etc/passwd"])
def test_tls_file_outside_the_inventory_directory_is_refused(project: Path, cert: str) -> None:
    found = problems(project, on_host(f"tls: {{cert: {cert!r}, key: key.pem}}"))
    assert any(m.startswith("inv.yml:8: groups/web/hosts/web1/tls/cert: expected a file in the inventory's directory")
               for m in found)


def test_tls_file_that_is_not_pem_is_refused_without_its_content(project: Path) -> None:
    (project / "secrets.env").write_text("TOKEN=hunter2\n")
    (message,) = problems(project, on_host("tls: {cert: secrets.env, key: key.pem}"))
    assert message.startswith("inv.yml:8: groups/web/hosts/web1/tls/cert: expected a PEM certificate") and "hunter2" not in message


def test_tls_dirs_from_the_controller_allow_more(project: Path, tmp_path_factory, monkeypatch) -> None:
    elsewhere = tmp_path_factory.mktemp("pki")
    (elsewhere / "cert.pem").write_text(CERT)
    text = on_host(f"tls: {{cert: {str(elsewhere / 'cert.pem')!r}, key: key.pem}}")
    assert problems(project, text)
    monkeypatch.setenv("DEPLOYER_TLS_DIRS", str(elsewhere))
    assert load_inventory(write(project, text)).hosts[0].tls.cert == elsewhere / "cert.pem"


def test_lone_surrogate_in_env_is_refused_at_check(project: Path) -> None:
    (message,) = problems(project, with_env('{A: "x\\ud800y"}'))
    assert message.startswith("inv.yml:5: ") and "U+D800" in message


def test_key_with_control_characters_cannot_forge_a_line(project: Path) -> None:
    text = BASE + '"x\\ninv.yml:1: all good\\x1b[2J": 1\n'
    (message,) = problems(project, text)
    assert "\n" not in message and "\x1b" not in message
    assert message.startswith("inv.yml:9: x\\ninv.yml:1: all good\\x1b[2J: unknown key")


@pytest.mark.parametrize(("data", "line"), [
    (BASE.encode() + b"x: \xff\n", 9),
    (b"app:\n  name: hello\n  source: a\xc3\n", 3),
    (BASE.encode().replace(b"web1:", b"web\x001:"), 8),
    (BASE.encode().replace(b"app:app", b"app:\x07app"), 4),
])
def test_nul_and_bad_bytes_are_reported_on_their_line(project: Path, data: bytes, line: int) -> None:
    (message,) = problems(project, data)
    assert message.startswith(f"inv.yml:{line}: ")


def test_secrets_file_that_is_not_utf8_is_reported_on_its_line(project: Path) -> None:
    (project / "secrets.env").write_bytes(b"A=1\nB=\xe9t\xe9\n")
    found = problems(project, BASE.replace("  wsgi: app:app\n", "  wsgi: app:app\n  secrets: secrets.env\n"))
    assert found == ["secrets.env:2: byte 0xe9 is not UTF-8 (secrets file must be UTF-8)"]
