"""The adversarial suite: hostile inventories and secrets files through the real CLI.

Each case is an inventory (and maybe a secrets file) an attacker or a careless
teammate could write: injection into every field that reaches a config or a
command, type confusion, YAML features, paths, names, encodings. Each goes
through ``deployer check`` and ``deployer render --out`` in-process (click's
CliRunner) and must end the same way: exit 2, a message at FILE:LINE, no
traceback, within 5 seconds, nothing rendered.

Line numbers refer to ``BASE`` below: app settings added by ``app()`` sit on
line 5, a host's extra settings by ``host()`` on line 9.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from deployer.cli import main
from tests.hostile import project  # noqa: F401 (a fixture)

BASE = """\
app:
  name: hello
  source: app
  wsgi: app:app
{app}groups:
  web:
    hosts:
      web1: {{address: 203.0.113.10{host}}}
{tail}"""


def inv(app: str = "", host: str = "", tail: str = "") -> str:
    return BASE.format(app=app, host=host, tail=tail)


def app(line: str) -> str:
    """An inventory with one more app setting, on line 5."""
    return inv(app=f"  {line}\n")


def host(setting: str) -> str:
    """An inventory whose host web1 has one more setting, on line 9 (line 8 without app lines)."""
    return inv(host=f", {setting}")


def case(id_: str, text: str | bytes, line: int, *, secrets: bytes | None = None, file: str = "inv.yml"):
    return pytest.param(text, line, secrets, file, id=id_)


def secrets(id_: str, body: bytes, line: int):
    return case(id_, app("secrets: secrets.env"), line, secrets=body, file="secrets.env")


# Payloads that would end a directive, open a block, start a comment, expand a variable,
# split an argument or start a new line in nginx, Apache, systemd or uwsgi's ini.
PAYLOADS = {
    "semicolon": "x; include /etc/passwd",
    "brace": "x { return 200",
    "close-brace": "x } server {",
    "newline": "x\\n    CustomLog \\\"|id\\\" common",
    "cr": "x\\rListen 9",
    "quote": 'x\\" ProxyPass / http://evil/ \\"',
    "dollar": "x$request_uri",
    "hash": "x#comment",
    "space": "x y",
    "percent": "x%{ENV:SECRET}",
    "backslash": "x\\\\n",
    "nul": "x\\0y",
    "escape": "x\\e]0;pwned\\a",
    "zone-id": "::1%\\n}\\nserver {",
}
HOST_FIELDS = ("address", "server_name", "ssh_user", "deploy_root", "client_max_body_size")


def injections():
    for field in HOST_FIELDS:
        for name, payload in PAYLOADS.items():
            if field == "address":
                yield case(f"inject-address-{name}", inv().replace("203.0.113.10", f'"{payload}"'), 8)
            elif field in ("server_name", "deploy_root") or name in ("semicolon", "newline", "quote", "zone-id"):
                yield case(f"inject-{field}-{name}", host(f'{field}: "{payload}"'), 8)
    for key in ("name", "wsgi", "requirements", "health"):
        for name in ("semicolon", "newline", "quote", "space", "dollar"):
            line = 2 if key == "name" else 4 if key == "wsgi" else 5
            text = inv().replace("app:app", f'"{PAYLOADS[name]}"') if key == "wsgi" else (
                inv().replace("name: hello", f'name: "{PAYLOADS[name]}"') if key == "name"
                else app(f'{key}: "{PAYLOADS[name]}"'))
            yield case(f"inject-app-{key}-{name}", text, line)
    for name in ("semicolon", "newline", "brace", "space"):
        yield case(f"inject-static-url-{name}", app(f'static: {{url: "/s{PAYLOADS[name]}", dir: static}}'), 5)
        yield case(f"inject-static-dir-{name}", app(f'static: {{url: /static, dir: "{PAYLOADS[name]}"}}'), 5)
        yield case(f"inject-shared-{name}", app(f'shared: ["{PAYLOADS[name]}"]'), 5)
    for name in ("newline", "cr", "nul", "escape"):
        yield case(f"inject-env-value-{name}", app(f'env: {{A: "{PAYLOADS[name]}"}}'), 5)
        yield case(f"inject-env-name-{name}", app(f'env: {{"A{PAYLOADS[name]}": v}}'), 5)
    for name in ("nul", "escape", "cr"):
        yield case(f"inject-hook-arg-{name}", app(f'hooks: {{after_switch: [[echo, "{PAYLOADS[name]}"]]}}'), 5)
        yield case(f"inject-hook-shell-{name}", app(f'hooks: {{after_switch: [{{shell: "{PAYLOADS[name]}"}}]}}'), 5)
        yield case(f"inject-tls-path-{name}", host(f'tls: {{cert: "c{PAYLOADS[name]}", key: key.pem}}'), 8)
    yield case("inject-host-name", inv().replace("web1:", '"web1;x":'), 8)
    yield case("inject-group-name", inv().replace("  web:", '  "web{x}":'), 6)


TYPE_CONFUSION = [
    case("type-app-list", "app: [1, 2]\n", 1),
    case("type-app-name-int", inv().replace("name: hello", "name: 42"), 2),
    case("type-app-name-null", inv().replace("name: hello", "name:"), 2),
    case("type-wsgi-list", inv().replace("wsgi: app:app", "wsgi: [app, app]"), 4),
    case("type-hosts-list", inv(tail="hosts: [a, b]\n"), 9),
    case("type-groups-string", "app: {name: hello, source: app, wsgi: 'app:app'}\ngroups: web\n", 2),
    case("type-server-name-map", host("server_name: {a: b}"), 8),
    case("type-server-name-empty", host("server_name: []"), 8),
    case("type-env-list", app("env: [A, B]"), 5),
    case("type-env-value-map", app("env: {A: {b: c}}"), 5),
    case("type-env-value-null", app("env: {A: }"), 5),
    case("type-hooks-string", app("hooks: 'rm -rf /'"), 5),
    case("type-hook-string", app("hooks: {after_switch: ['rm -rf /']}"), 5),
    case("type-hook-run-string", app("hooks: {after_switch: [{run: 'rm -rf /'}]}"), 5),
    case("type-hook-run-and-shell", app("hooks: {after_switch: [{run: [a], shell: b}]}"), 5),
    case("type-hook-arg-map", app("hooks: {after_switch: [[echo, {a: b}]]}"), 5),
    case("type-http-port-float", host("http_port: 80.5"), 8),
    case("type-http-port-bool", host("http_port: true"), 8),
    case("type-http-port-string", host("http_port: '80'"), 8),
    case("type-http-port-zero", host("http_port: 0"), 8),
    case("type-http-port-big", host("http_port: 65536"), 8),
    case("type-ssh-port-negative", host("ssh_port: -22"), 8),
    case("type-workers-huge", host("workers: 100000"), 8),
    case("type-become-string", host("become: 'yes please'"), 8),
    case("type-tls-string", host("tls: cert.pem"), 8),
    case("type-tls-missing-key", host("tls: {cert: cert.pem}"), 8),
    case("type-static-list", app("static: [/static, static]"), 5),
    case("type-shared-map", app("shared: {a: b}"), 5),
    case("type-keep-releases-string", app("keep_releases: many"), 5),
    case("type-unknown-key", app("sorce: app"), 5),
    case("type-address-in-vars", inv().replace("    hosts:", "    vars: {address: 1.2.3.4}\n    hosts:"), 7),
    case("type-mod-wsgi-nginx", host("server: mod_wsgi"), 8),
    case("type-server-unknown", host("server: waitress"), 8),
    case("type-document-scalar", "just a string\n", 1),
    case("type-document-null", "~\n", 1),
    case("type-document-empty", "", 1),
]

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
MERGE_BOMB = "m0: &m0 {k: v}\n" + "".join(
    f"m{i + 1}: &m{i + 1} {{<<: [*m{i}, *m{i}, *m{i}, *m{i}], k{i}: v}}\n" for i in range(30))

YAML_FEATURES = [
    case("yaml-alias-bomb", BOMB, 0),
    case("yaml-merge-bomb", MERGE_BOMB, 0),
    case("yaml-recursive-seq", "a: &a [1, *a]\n", 1),
    case("yaml-recursive-map", "a: &a {b: *a}\n", 1),
    case("yaml-recursive-merge", "a: &a {<<: *a}\n", 1),
    case("yaml-deep-flow", "app: " + "[" * 3000 + "]" * 3000 + "\n", 1),
    case("yaml-deep-block", "app:\n  x:\n    " + "- " * 3000 + "y\n", 3),
    case("yaml-deep-map-flow", "app: " + "{a: " * 500 + "1" + "}" * 500 + "\n", 1),
    case("yaml-merge-int", inv(tail="defaults:\n  <<: 5\n"), 10),
    case("yaml-merge-string", inv(tail="defaults:\n  <<: 'x'\n"), 10),
    case("yaml-merge-list-of-int", inv(tail="defaults:\n  <<: [1, 2]\n"), 10),
    case("yaml-tag-python-object", inv(tail="x: !!python/object/apply:os.system [id]\n"), 9),
    case("yaml-tag-python-name", inv().replace("app:app", "!!python/name:os.system"), 4),
    case("yaml-tag-vault", inv().replace("app:app", "!vault |\n    $ANSIBLE_VAULT;1.1;AES256"), 4),
    case("yaml-tag-binary", app("env: {A: !!binary aGVsbG8=}"), 5),
    case("yaml-tag-set", app("shared: !!set {a, b}"), 5),
    case("yaml-tag-str", app("env: {A: !!str 0640}"), 5),
    case("yaml-tag-nonspecific", app("env: {A: ! 0640}"), 5),
    case("yaml-tag-omap", app("env: !!omap [{A: b}]"), 5),
    case("yaml-tag-directive", "%TAG !e! tag:example.com,2000:\n---\n" + inv().replace("app:app", "!e!x y"), 6),
    case("yaml-bigint", host("ssh_port: " + "9" * 5000), 8),
    case("yaml-bigint-env", app("env: {A: " + "1" * 5000 + "}"), 5),
    case("yaml-bad-date", app("env: {A: 2024-13-45}"), 5),
    case("yaml-date", app("env: {A: 2024-01-02}"), 5),
    case("yaml-timestamp", app("env: {A: 2024-01-02 10:00:00}"), 5),
    case("yaml-octal-env", app("env: {ZIP: 01234}"), 5),
    case("yaml-octal-hook", app("hooks: {after_switch: [[chmod, 0640, f]]}"), 5),
    case("yaml-hex-env", app("env: {A: 0x1F}"), 5),
    case("yaml-sexagesimal", app("env: {T: 1:30}"), 5),
    case("yaml-norway", app("env: {COUNTRY: NO}"), 5),
    case("yaml-on", app("env: {FLAG: on}"), 5),
    case("yaml-version", app("env: {VERSION: 1.10}"), 5),
    case("yaml-inf", app("env: {A: .inf}"), 5),
    case("yaml-underscore-int", app("env: {A: 1_000}"), 5),
    case("yaml-become-yes", host("become: yes"), 8),
    case("yaml-ssh-port-octal", host("ssh_port: 022"), 8),
    case("yaml-two-documents", inv() + "---\napp: {}\n", 9),
    case("yaml-duplicate-key", inv().replace("  source: app\n", "  source: app\n  source: /\n"), 4),
    case("yaml-complex-key", inv(tail="? [a, b]\n: c\n"), 9),
    case("yaml-undefined-alias", inv(tail="defaults: *nowhere\n"), 9),
    case("yaml-tab-indent", inv().replace("  name: hello", "\tname: hello"), 2),
    case("yaml-unclosed-flow", app("env: {A: b"), 6),
    case("yaml-unicode-line-separator", app("env: {A: \"x\u2028y\"}"), 5),
    case("yaml-next-line", app("env: {A: x\x85y}"), 5),
    case("yaml-lone-cr", inv().replace("  source: app\n", "  source: app\r  x: y\n"), 3),
]

PATHS = [
    case(f"path-deploy-root-{root.strip('/').replace('/', '-') or 'slash'}", host(f"deploy_root: {root}"), 8)
    for root in ("/", "/tmp", "/etc", "/usr", "/var", "/home", "/root", "/proc", "/sys", "/dev", "/boot",
                 "/run", "/var/tmp", "/var/log", "/home/deploy", "/usr/local/bin", "/etc/nginx", "/srv/../etc",
                 "srv", "//srv")
] + [
    case("path-tls-shadow", host("tls: {cert: /etc/shadow, key: key.pem}"), 8),
    case("path-tls-ssh-key", host("tls: {cert: cert.pem, key: ~/.ssh/id_rsa}"), 8),
    case("path-tls-dotdot", host("tls: {cert: ../../etc/passwd, key: key.pem}"), 8),
    case("path-tls-not-pem", host("tls: {cert: app/requirements.txt, key: key.pem}"), 8),
    case("path-tls-key-is-cert", host("tls: {cert: cert.pem, key: cert.pem}"), 8),
    case("path-static-dotdot", app("static: {url: /static, dir: ../../etc}"), 5),
    case("path-static-absolute", app("static: {url: /static, dir: /etc}"), 5),
    case("path-static-root-url", app("static: {url: /, dir: static}"), 5),
    case("path-requirements-absolute", app("requirements: /etc/passwd"), 5),
    case("path-requirements-dotdot", app("requirements: ../../../etc/passwd"), 5),
    case("path-shared-venv", app("shared: [.venv]"), 5),
    case("path-shared-dotdot", app("shared: [../../etc]"), 5),
    case("path-shared-absolute", app("shared: [/etc]"), 5),
    case("path-health-relative", app("health: healthz"), 5),
    case("path-source-missing", inv().replace("source: app", "source: nowhere"), 3),
    case("path-templates-missing", inv(tail="templates: nowhere\n"), 9),
]

NAMES = [
    case(f"name-reserved-{name}", inv().replace("name: hello", f"name: {name}"), 2)
    for name in ("ssh", "www-data", "root", "nginx", "apache2", "systemd-resolved", "postgres", "daemon",
                 "nobody", "sshd", "default", "cron", "dbus", "deployer")
] + [
    case("name-uppercase", inv().replace("name: hello", "name: Hello"), 2),
    case("name-leading-digit", inv().replace("name: hello", "name: 1app"), 2),
    case("name-too-long", inv().replace("name: hello", "name: " + "a" * 40), 2),
    case("name-unicode", inv().replace("name: hello", "name: h\u00e9llo"), 2),
    case("name-host-uppercase", inv().replace("web1:", "Web1:"), 8),
    case("name-host-group-clash", inv(tail="hosts: {web: {address: 203.0.113.11}}\n"), 9),
    case("name-address-twice", inv().replace("web1: {address: 203.0.113.10}",
                                             "web1: {address: 203.0.113.10}\n      web2: {address: 203.0.113.10}"), 9),
    case("name-key-forges-line", inv(tail='"x\\ninv.yml:1: ok": 1\n'), 9),
]

ENCODINGS = [
    case("enc-latin1-byte", inv().encode() + b"x: caf\xe9\n", 9),
    case("enc-bad-continuation", inv().encode().replace(b"hello", b"hel\xc3lo"), 2),
    case("enc-nul", inv().encode().replace(b"app:app", b"app:\x00app"), 4),
    case("enc-bell", inv().encode().replace(b"app:app", b"app:\x07app"), 4),
    case("enc-escape", inv().encode().replace(b"app:app", b"app:\x1b[2Japp"), 4),
    case("enc-surrogate-escape", app('env: {A: "\\ud800"}'), 5),
    case("enc-surrogate-pair-escape", app('env: {A: "\\udfff\\ud800"}'), 5),
    case("enc-utf16", inv().encode("utf-16"), 0),
    case("enc-overlong", inv().encode().replace(b"hello", b"h\xc0\xafllo"), 2),
]

SECRETS_FILES = [
    secrets("secrets-u2028", "TOKEN=abc\u2028LD_PRELOAD=/tmp/x.so\n".encode(), 1),
    secrets("secrets-u2029", "A=1\nTOKEN=abc\u2029B=2\n".encode(), 2),
    secrets("secrets-nel", "TOKEN=abc\x85B=2\n".encode(), 1),
    secrets("secrets-file-separator", b"A=1\nB=2\nTOKEN=abc\x1cB=2\n", 3),
    secrets("secrets-vertical-tab", b"TOKEN=abc\x0bB=2\n", 1),
    secrets("secrets-form-feed", b"TOKEN=abc\x0cB=2\n", 1),
    secrets("secrets-lone-cr", b"TOKEN=abc\rB=2\n", 1),
    secrets("secrets-escape", b"TOKEN=\x1b]0;pwned\x07\n", 1),
    secrets("secrets-nul", b"TOKEN=a\x00b\n", 1),
    secrets("secrets-del", b"TOK\x7fEN=x\n", 1),
    secrets("secrets-not-utf8", b"A=1\nB=caf\xe9\n", 2),
    secrets("secrets-no-equals", b"A=1\nJUSTTEXT\n", 2),
    secrets("secrets-bad-name", b"A-B=1\n", 1),
    secrets("secrets-unterminated", b"A='abc\n", 1),
    secrets("secrets-trailing-junk", b'A="abc" rest\n', 1),
    secrets("secrets-twice", b"A=1\nA=2\n", 2),
    secrets("secrets-shell", b"A=$(id)'\n", 1),
    secrets("secrets-u2028-in-name", "A\u2028B=1\n".encode(), 1),
    case("secrets-also-in-env", inv(app="  env: {A: x}\n  secrets: secrets.env\n"), 5, secrets=b"A=1\n"),
]

CASES = [*injections(), *TYPE_CONFUSION, *YAML_FEATURES, *PATHS, *NAMES, *ENCODINGS, *SECRETS_FILES]


def test_the_suite_is_big_enough() -> None:
    assert len(CASES) >= 100


def test_the_base_inventory_is_fine(project: Path) -> None:
    (project / "inv.yml").write_text(inv())
    assert CliRunner().invoke(main, ["check", "-i", "inv.yml"]).exit_code == 0


@pytest.mark.parametrize(("text", "line", "secrets_body", "file"), CASES)
def test_hostile_input_is_refused_cleanly(project: Path, text: str | bytes, line: int,
                                          secrets_body: bytes | None, file: str) -> None:
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    (project / "inv.yml").write_bytes(data)
    if secrets_body is not None:
        (project / "secrets.env").write_bytes(secrets_body)
    out = project / "rendered"
    for args in (["check", "-i", "inv.yml"], ["render", "-i", "inv.yml", "--out", str(out)], ["render", "-i", "inv.yml"]):
        start = time.monotonic()
        result = CliRunner().invoke(main, args)
        elapsed = time.monotonic() - start
        assert result.exit_code == 2, (args, result.output)
        assert isinstance(result.exception, SystemExit), result.exception
        assert "Traceback" not in result.output
        assert elapsed < 5, f"{args[0]} took {elapsed:.1f}s"
        where = f"{file}:{line}: " if line else f"{file}:"
        assert where in result.stderr, result.stderr
        assert result.stdout == "", "something was printed as rendered"
        assert not out.exists(), "something was rendered"
        for message in result.stderr.splitlines()[:-1]:  # no forged line: each starts where the problem is
            assert message.startswith(f"{file}:"), message


@pytest.mark.parametrize("case_id", ["yaml-alias-bomb", "yaml-deep-flow", "yaml-merge-bomb", "secrets-u2028",
                                     "enc-nul", "inject-address-zone-id"])
def test_hostile_input_in_a_real_process(project: Path, case_id: str) -> None:
    """The same through ``python -m deployer.cli``: the interpreter's own limits (stack, memory) apply."""
    text, line, secrets_body, file = next(c.values for c in CASES if c.id == case_id)
    (project / "inv.yml").write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    if secrets_body is not None:
        (project / "secrets.env").write_bytes(secrets_body)
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "deployer.cli", "render", "-i", "inv.yml", "--out", "out"],
                            capture_output=True, text=True, timeout=30, cwd=project)
    assert time.monotonic() - start < 5
    assert result.returncode == 2 and result.stdout == ""
    assert "Traceback" not in result.stderr and (f"{file}:{line}: " if line else f"{file}:") in result.stderr
    assert not (project / "out").exists()
