"""Property tests: no accepted inventory value changes what a rendered file says.

For any value hypothesis finds (hostnames, addresses, ports, paths, sizes, env
names and values, benign or hostile), either the inventory is refused, or every
rendered nginx, Apache, systemd and uwsgi file holds exactly the directives the
template gives for a benign value (parsed into directives and nesting, not
compared as text), the env file reads back, as systemd and wsgi.py read it, to
exactly the values given, and wsgi.py is the same Python program.

The inventory goes through the real parser and validator (``yamldoc.parse``,
``schema.validate``); only the file checks of the loader are left out.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployer.config.schema import validate
from deployer.config.yamldoc import YamlSyntaxError, parse
from deployer.core.render import TlsMaterial, render_host
from deployer.secret import Secret
from tests.factories import COMBINATIONS

INVENTORY = Path("/nonexistent/inventories/inv.yml")  # validate is pure: nothing is opened
TLS = TlsMaterial("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                  Secret("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"))
PROPERTY = settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def yaml_value(value: object) -> str:
    """A value as YAML: JSON is YAML's flow syntax (non-ASCII kept raw, so no surrogate escapes)."""
    return json.dumps(value, ensure_ascii=False)


def inventory_text(host: dict[str, object], env: dict[str, str] | None = None, app: dict[str, object] | None = None) -> str:
    app_settings = {"name": "hello", "source": "app", "wsgi": "app:app", "static": {"url": "/static", "dir": "static"},
                    "shared": ["instance"], "env": env or {"A": "b"}, **(app or {})}
    return "app: " + yaml_value(app_settings) + "\nhosts:\n  web1: " + yaml_value({"address": "198.18.0.11", **host}) + "\n"


def rendered(text: str) -> dict[str, str] | None:
    """path -> content of every file, for every stack with and without TLS; None when refused."""
    try:
        doc = parse(text)
    except YamlSyntaxError:
        return None
    if validate(doc, "inv.yml", INVENTORY).problems:
        return None
    files: dict[str, str] = {}
    for server, proxy in COMBINATIONS:
        for tls in (False, True):
            settings_ = {"server": server, "proxy": proxy}
            if tls:
                settings_["tls"] = {"cert": "cert.pem", "key": "key.pem"}
            result = validate(parse(_with(text, settings_)), "inv.yml", INVENTORY)
            if result.problems:
                return None  # e.g. http_port == https_port is refused with tls only
            inv = result.inventory
            for file in render_host(inv, inv.hosts[0], tls=TLS if tls else None, reveal_secrets=True):
                files[f"{server}+{proxy}+{tls}:{file.path}"] = file.content
    return files


def _with(text: str, extra: dict[str, object]) -> str:
    head, host = text.rsplit("  web1: ", 1)
    return head + "  web1: " + yaml_value({**json.loads(host), **extra}) + "\n"


# -- parsers: a rendered file as its directives -------------------------------------------


def nginx_directives(text: str) -> list[tuple[int, str]]:
    """(depth, name) of every statement and block, nginx's tokenizer: quotes, '#', ';', '{', '}'."""
    out, depth, words, i, word = [], 0, [], 0, ""
    while i < len(text):
        ch = text[i]
        if ch in "\"'":
            end = text.index(ch, i + 1)
            word += text[i:end + 1]
            i = end + 1
            continue
        if ch == "#" and not word:
            i = text.find("\n", i) % (len(text) + 1) if "\n" in text[i:] else len(text)
            continue
        if ch.isspace() or ch in ";{}":
            if word:
                words.append(word)
                word = ""
            if ch in ";{":
                out.append((depth, words[0] if words else "<empty>"))
                words, depth = [], depth + (ch == "{")
            elif ch == "}":
                out.append((depth, "}" + ("!" if words else "")))
                depth -= 1
        else:
            word += ch
        i += 1
    return out + ([(depth, "<trailing>")] if words or word else [])


def apache_directives(text: str) -> list[tuple[int, str]]:
    out, depth = [], 0
    for line in text.replace("\\\n", " ").split("\n"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("</"):
            depth -= 1
            out.append((depth, line.split(">")[0]))
        elif line.startswith("<"):
            out.append((depth, line.split()[0]))
            depth += 1
        else:
            out.append((depth, line.split()[0]))
    return out


def ini_directives(text: str, separator: str) -> list[str]:
    """systemd units and uwsgi ini: [Section] and key names, comments and continuations as they read them."""
    out = []
    for line in text.replace("\\\n", " ").split("\n"):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        out.append(line if line.startswith("[") else line.split(separator, 1)[0].strip() + separator)
    return out


def python_shape(text: str) -> str:
    """wsgi.py with every string constant blanked: the same program for any accepted value."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return "<not python>"
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = ""
    return ast.dump(tree)


def env_parser():
    """wsgi.py's parse_env_file: systemd's EnvironmentFile= grammar, as deployed."""
    files = rendered(inventory_text({"server": "mod_wsgi", "proxy": "apache"}))
    source = next(v for k, v in files.items() if k.endswith("/deployer_wsgi.py"))
    namespace: dict[str, object] = {}
    exec(compile(source.split("\nif LOAD_ENV:\n")[0], "wsgi.py", "exec"), namespace)  # noqa: S102
    return namespace["parse_env_file"]


PARSE_ENV = env_parser()


def shape(path: str, content: str) -> object:
    if "/nginx/" in path:
        return nginx_directives(content)
    if "/apache2/" in path:
        return apache_directives(content)
    if path.endswith((".service", ".socket")):
        return ini_directives(content, "=")
    if path.endswith("uwsgi.ini"):
        return ini_directives(content, "=")
    if path.endswith("wsgi.py"):
        return python_shape(content)
    if path.endswith("/env"):
        return [name for name, _ in PARSE_ENV(content)]
    return None  # tls files: verbatim from the controller


def assert_same_directives(hostile: str, benign: str) -> None:
    got, want = rendered(hostile), rendered(benign)
    assert want is not None, "the benign inventory must render"
    if got is None:
        return  # refused: the other half of the property
    assert got.keys() == want.keys()
    for path in want:
        assert shape(path, got[path]) == shape(path, want[path]), path


# -- strategies: near-valid values with hostile characters mixed in -----------------------

HOSTILE = st.sampled_from(list(";{}\"'$%#\\ \t\n\r\0|<>`*:/@=,()[]!&^~\x1b\u2028\x85") + ["\ud800", "..", "%0a"])
LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
HOSTNAME = st.lists(LABEL, min_size=1, max_size=4).map(".".join)


def mixed(base: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """``base`` as is, with a hostile character spliced in, or any text at all."""
    spliced = st.tuples(base, HOSTILE, st.integers(0, 40)).map(lambda t: t[0][: t[2]] + t[1] + t[0][t[2]:])
    return st.one_of(base, spliced, st.text(max_size=20))


ZONE_ID = st.tuples(st.ip_addresses(v=6), st.text(max_size=12)).map(lambda t: f"{t[0]}%{t[1]}")  # issue 11 item 2
NAME = st.one_of(mixed(HOSTNAME), st.ip_addresses().map(str), mixed(st.ip_addresses(v=6).map(str)), ZONE_ID)


@PROPERTY
@given(st.lists(NAME, min_size=1, max_size=3))
def test_any_accepted_server_name_keeps_the_directives(names: list[str]) -> None:
    benign = [f"b{i}.example.com" for i in range(len(names))]
    assert_same_directives(inventory_text({"server_name": names}), inventory_text({"server_name": benign}))


@PROPERTY
@given(NAME)
def test_any_accepted_address_keeps_the_directives(address: str) -> None:
    assert_same_directives(inventory_text({"address": address}), inventory_text({"address": "198.18.0.12"}))


@PROPERTY
@given(st.integers(-5, 70000), st.integers(-5, 70000), st.integers(-1, 4000))
def test_any_accepted_port_and_timeout_keeps_the_directives(http: int, https: int, timeout: int) -> None:
    benign = {"http_port": 80 if http == 80 else 8080, "https_port": 443 if https == 443 else 8443, "timeout": 30}
    assert_same_directives(inventory_text({"http_port": http, "https_port": https, "timeout": timeout}),
                           inventory_text(benign))


SEGMENT = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,8}", fullmatch=True)


@PROPERTY
@given(mixed(st.lists(SEGMENT, min_size=1, max_size=3).map(lambda s: "/srv/" + "/".join(s))), mixed(SEGMENT),
       mixed(SEGMENT.map(lambda s: "/" + s)), mixed(st.from_regex(r"[0-9]{1,6}[kKmMgG]?", fullmatch=True)))
def test_any_accepted_path_and_size_keeps_the_directives(root: str, static_dir: str, url: str, size: str) -> None:
    hostile = inventory_text({"deploy_root": root, "client_max_body_size": size},
                             app={"static": {"url": url, "dir": static_dir}})
    assert_same_directives(hostile, inventory_text({"deploy_root": "/srv/apps", "client_max_body_size": "1m"},
                                                   app={"static": {"url": "/assets", "dir": "public"}}))


@PROPERTY
@given(st.dictionaries(mixed(st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True)), st.text(max_size=40),
                       min_size=1, max_size=4))
def test_any_accepted_env_reads_back_exactly_and_keeps_the_directives(env: dict[str, str]) -> None:
    files = rendered(inventory_text({}, env=env))
    if files is None:
        return
    for path, content in files.items():
        if path.endswith("/env"):
            assert dict(PARSE_ENV(content)) == env
    benign = {f"B{i}": "x" for i in range(len(env))}
    want = rendered(inventory_text({}, env=benign))
    for path in want:
        if not path.endswith("/env"):
            assert shape(path, files[path]) == shape(path, want[path]), path


def test_the_parsers_see_an_injection() -> None:
    """The comparison can fail: a directive smuggled in is a different shape."""
    benign = rendered(inventory_text({}))
    for path, content in benign.items():
        kind = shape(path, content)
        if kind is None or path.endswith("/env"):
            continue
        injected = content.replace("hello", "hello;\n}\nX=1\nfoo bar;\n<Bad>\n", 1)
        assert shape(path, injected) != kind, path
