"""Dependencies: which file declares them, resolution for the hosts' exact interpreter,
the wheel tag check, build-failure diagnosis, and symlinks judged on the host's layout.

The resolution tests run the real uv offline (``--no-index`` and a local folder of
small real wheels whose metadata carries the markers under test).
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from deployer.artifact import dependencies, wheels
from deployer.artifact.manifest import AppFile, HostPython, ReleaseError, SourceError, host_python_of, wheel_misfit
from deployer.artifact.release import build_artifact
from deployer.artifact.source import host_links, link_escape, release_link_problems
from deployer.config.model import App, WsgiTarget
from deployer.core.facts import parse_facts


def app_at(root: Path, files: dict[str, str], **kw) -> App:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return App(name="demo", source=root, wsgi=WsgiTarget("app", "app"), **kw)


PYPROJECT = '[project]\nname = "demo"\nversion = "1"\ndependencies = ["flask>=3"]\n'
PACKAGE = PYPROJECT + '[build-system]\nrequires = ["flit_core<4"]\nbuild-backend = "flit_core.buildapi"\n'


# --------------------------------------------------------------------------- detection order


def test_detection_order(tmp_path):
    everything = {"pyproject.toml": PACKAGE, "uv.lock": "version = 1\n", "requirements.txt": "flask\n",
                  "requirements/prod.txt": "flask\n"}
    app = app_at(tmp_path / "a", everything)
    assert dependencies.detect(app).kind == "uv.lock" and dependencies.detect(app).build_app
    explicit = app_at(tmp_path / "a", {}, requirements="requirements/prod.txt")
    assert (dependencies.detect(explicit).kind, dependencies.detect(explicit).label) == ("requirements", "requirements/prod.txt")
    (tmp_path / "a" / "uv.lock").unlink()
    assert dependencies.detect(app).label == "requirements.txt"
    (tmp_path / "a" / "requirements.txt").unlink()
    found = dependencies.detect(app)
    assert (found.kind, found.build_app, found.dependencies) == ("pyproject", True, ("flask>=3",))


def test_a_lock_needs_its_pyproject_and_a_project_without_backend_is_not_built(tmp_path):
    app = app_at(tmp_path / "a", {"uv.lock": "version = 1\n", "requirements.txt": "flask\n"})
    assert dependencies.detect(app).kind == "requirements"
    bare = app_at(tmp_path / "b", {"pyproject.toml": PYPROJECT})
    assert (dependencies.detect(bare).kind, dependencies.detect(bare).build_app) == ("pyproject", False)
    dynamic = app_at(tmp_path / "c", {"pyproject.toml": PACKAGE.replace('dependencies = ["flask>=3"]', 'dynamic = ["dependencies"]')})
    assert dependencies.detect(dynamic).dependencies is None


def test_nothing_declared_or_a_tool_only_pyproject_is_refused(tmp_path):
    for name, files in {"none": {}, "tool-only": {"pyproject.toml": "[tool.black]\nline-length = 100\n"}}.items():
        with pytest.raises(SourceError, match="no dependencies declared"):
            dependencies.detect(app_at(tmp_path / name, files))
    with pytest.raises(SourceError, match="pyproject.toml: "):
        dependencies.detect(app_at(tmp_path / "bad", {"pyproject.toml": "[project\n"}))


def test_requirements_includes_and_index_options(tmp_path):
    app = app_at(tmp_path / "a", {"requirements.txt": "-r base.txt\n--find-links ../dist\n-c pins.txt\n",
                                  "base.txt": "flask ; python_version >= '3.8' --hash=sha256:00\n", "pins.txt": ""})
    found = dependencies.detect(app)
    assert [p.name for p in found.inputs] == ["requirements.txt", "base.txt", "pins.txt"]
    assert dependencies.index_options(found.inputs) == [f"--find-links {(tmp_path / 'dist').resolve()}"]


# --------------------------------------------------------------------------- resolution with the real uv


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def wheel(dest: Path, name: str, version: str, requires: tuple[str, ...] = (), tag: str = "py3-none-any") -> None:
    """A small real wheel whose METADATA carries ``requires`` (markers included)."""
    info = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {f"{name}/__init__.py": b"", f"{info}/METADATA": meta.encode(),
             f"{info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n".encode()}
    record = "".join(f"{p},{record_hash(d)},{len(d)}\n" for p, d in files.items()) + f"{info}/RECORD,,\n"
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest / f"{name}-{version}-{tag}.whl", "w") as whl:
        for member, data in [*files.items(), (f"{info}/RECORD", record.encode())]:
            whl.writestr(member, data)


@pytest.fixture
def index(tmp_path) -> Path:
    """redis 5.0.1's shape: a dependency only below Python 3.11.3."""
    dist = tmp_path / "dist"
    wheel(dist, "deployerredis", "5.0.1", ('deployertimeout>=4.0.3; python_full_version < "3.11.3"',))
    wheel(dist, "deployertimeout", "4.0.3")
    return dist


def offline(index: Path, line: str) -> str:
    return f"--no-index\n--find-links {index}\n{line}\n"


@pytest.mark.parametrize("version, expected", [
    ("3.11.2", ("deployerredis-5.0.1-py3-none-any.whl", "deployertimeout-4.0.3-py3-none-any.whl")),
    ("3.11.7", ("deployerredis-5.0.1-py3-none-any.whl",)),
])
def test_markers_are_resolved_for_the_hosts_full_python_version(tmp_path, index, version, expected):
    app = app_at(tmp_path / "app", {"app.py": "", "requirements.txt": offline(index, "deployerredis==5.0.1")})
    artifact = build_artifact(app, python=HostPython(version), cache_dir=tmp_path / "cache")
    assert artifact.wheel_names == expected and artifact.target.version == version


def test_pyproject_dependencies_are_resolved_for_the_hosts(tmp_path, index):
    app = app_at(tmp_path / "app", {"app.py": "", "pyproject.toml": PYPROJECT.replace('"flask>=3"', '"deployerredis"')})
    declared = dependencies.detect(app)
    work = tmp_path / "work"
    work.mkdir()
    pinned = wheels._input_file(app.source, declared, work)
    assert pinned.read_text() == "deployerredis\n"


def test_a_wheel_for_another_platform_is_never_shipped(tmp_path):
    dist = tmp_path / "dist"
    wheel(dist, "deployermac", "1.0", tag="cp311-cp311-macosx_11_0_arm64")
    made = tmp_path / "made"
    made.mkdir()
    (made / "wheels").mkdir()
    (made / "wheels" / "deployermac-1.0-cp311-cp311-macosx_11_0_arm64.whl").write_bytes(b"x")
    with pytest.raises(ReleaseError, match="do not fit the hosts, not shipped:\n  deployermac-1.0-.*platform macosx_11_0_arm64"):
        wheels._fill(tmp_path / "cache", "k" * 64, HostPython("3.11.2"), lambda work: (work / "wheels").mkdir()
                     or (work / "wheels" / "deployermac-1.0-cp311-cp311-macosx_11_0_arm64.whl").write_bytes(b"x"))
    assert not (tmp_path / "cache" / ("k" * 64)).exists()


# --------------------------------------------------------------------------- tags


HOSTS = HostPython("3.11.2", "cpython", "x86_64", (2, 36))


@pytest.mark.parametrize("name, fits", [
    ("flask-3.1.3-py3-none-any.whl", True),
    ("six-1.16.0-py2.py3-none-any.whl", True),
    ("markupsafe-3.0.4-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl", True),
    ("cryptography-44.0.0-cp39-abi3-manylinux_2_34_x86_64.whl", True),
    ("x-1-cp311-cp311-linux_x86_64.whl", True),
    ("x-1-cp312-cp312-manylinux_2_17_x86_64.whl", False),  # another Python
    ("x-1-cp310-cp310-manylinux_2_17_x86_64.whl", False),  # an older CPython's ABI
    ("x-1-cp311-cp311-manylinux_2_39_x86_64.whl", False),  # a newer glibc than bookworm's
    ("x-1-cp311-cp311-manylinux_2_17_aarch64.whl", False),  # another CPU
    ("x-1-cp311-cp311-macosx_11_0_arm64.whl", False),
    ("x-1-cp311-cp311-musllinux_1_2_x86_64.whl", False),
    ("x-1-pp310-pypy310_pp73-manylinux_2_17_x86_64.whl", False),
])
def test_wheel_tags_are_checked_against_the_hosts(name, fits):
    assert (wheel_misfit(name, HOSTS) is None) == fits, wheel_misfit(name, HOSTS)


def test_host_python_comes_from_the_facts():
    target = host_python_of("3.11.2", {"implementation": "cpython", "machine": "x86_64", "libc": ["glibc", "2.36"]})
    assert target.describe() == "CPython 3.11.2 on x86_64-manylinux_2_36" and target.minor == "3.11"
    assert host_python_of("3.12.1", {"machine": "aarch64", "libc": ["glibc", "2.39"]}).platform == "aarch64-manylinux_2_39"
    with pytest.raises(ReleaseError, match="only glibc"):
        host_python_of("3.11.2", {"machine": "x86_64", "libc": ["", ""]})
    with pytest.raises(ReleaseError, match="only CPython"):
        host_python_of("3.10.13", {"implementation": "pypy", "machine": "x86_64", "libc": ["glibc", "2.36"]})


def test_facts_carry_the_interpreter_platform():
    doc = ('{"python": "3.11.2", "platform": {"implementation": "cpython", "machine": "x86_64", "libc": ["glibc", "2.36"]},'
           ' "disk_free_mb": 1, "packages": {}, "user": null, "current": null, "releases": [], "venvs": [],'
           ' "lock": null, "files": {}, "links": {}, "units": {}, "serving": {}}')
    facts = parse_facts(doc)
    assert host_python_of(facts.python, facts.platform) == HOSTS


def test_hosts_with_different_pythons_are_deployed_separately():
    from deployer.errors import DeployerError
    from deployer.run.rollout import host_python

    def facts(version):
        return parse_facts('{"python": "%s", "platform": {"machine": "x86_64", "libc": ["glibc", "2.36"]}, "disk_free_mb": 1,'
                           ' "packages": {}, "user": null, "current": null, "releases": [], "venvs": [], "lock": null,'
                           ' "files": {}, "links": {}, "units": {}, "serving": {}}' % version)
    assert host_python({"a": facts("3.11.2"), "b": facts("3.11.2")}) == HOSTS
    with pytest.raises(DeployerError, match="a: CPython 3.11.2 on .*, b: CPython 3.11.7 on .*--limit"):
        host_python({"a": facts("3.11.2"), "b": facts("3.11.7")})


# --------------------------------------------------------------------------- build failures


@pytest.mark.parametrize("log, said", [
    ("src/m.c:1:10: fatal error: libpq-fe.h: No such file or directory\n compilation terminated.\n"
     "error: command '/usr/bin/x86_64-linux-gnu-gcc' failed with exit code 1", "the C header libpq-fe.h is missing"),
    ("error: command 'gcc' failed: No such file or directory", "the C compiler gcc is missing or failed"),
    ("error: can't find Rust compiler", "a Rust compiler (rustc, cargo) is missing"),
    ("ModuleNotFoundError: No module named 'Cython'", "the build needs the Python module Cython"),
    ("something else entirely", ""),
])
def test_build_failures_are_diagnosed(log, said):
    assert wheels.diagnose_build(log).startswith(said)


FAILING_BACKEND = '''
import sys
def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    print("gcc -I/usr/include/python3.11 -c src/speedups.c", file=sys.stderr)
    print("src/speedups.c:2:10: fatal error: yaml.h: No such file or directory", file=sys.stderr)
    print("error: command 'x86_64-linux-gnu-gcc' failed with exit code 1", file=sys.stderr)
    raise SystemExit(1)
'''


def test_a_failing_sdist_build_names_the_package_and_what_was_missing(tmp_path):
    dist = tmp_path / "dist"
    dist.mkdir()
    top = "deployerbroken-0.1"
    files = {f"{top}/pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
             f"{top}/backend.py": FAILING_BACKEND,
             f"{top}/PKG-INFO": "Metadata-Version: 2.2\nName: deployerbroken\nVersion: 0.1\n"}
    with tarfile.open(dist / f"{top}.tar.gz", "w:gz") as tar:
        for rel, text in files.items():
            info = tarfile.TarInfo(rel)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    app = app_at(tmp_path / "app", {"app.py": "", "requirements.txt": offline(dist, "deployerbroken==0.1")})
    with pytest.raises(wheels.BuildError) as caught:
        build_artifact(app, python=HostPython("3.11.2"), cache_dir=tmp_path / "cache")
    text = str(caught.value)
    assert text.startswith("deployerbroken==0.1 has no wheel for the hosts and building it from its sdist failed: "
                           "the C header yaml.h is missing"), text
    assert "Traceback" not in text


# --------------------------------------------------------------------------- links on the host's layout


def links(**targets: str) -> list[AppFile]:
    return [AppFile("static", "dir"), AppFile("pkg", "dir"),
            *(AppFile(rel.replace("__", "/"), "link", link=t) for rel, t in targets.items())]


def test_links_are_resolved_on_the_hosts_layout():
    outside = host_links(App(name="d", source=Path("."), wsgi=WsgiTarget("a", "a"), shared=("instance",)))
    files = links(ok__="static", static__logo="../pkg/logo.png", pkg__up="../static", loop="loop",
                  etc=".venv/../../../../etc", data="instance/db.sqlite", climb="pkg/../..", via="pkg__up")
    files = [AppFile(f.path.rstrip("/"), f.kind, link=f.link.replace("__", "/")) for f in files]
    entries = {f.path: f for f in files}
    assert link_escape("ok", entries, outside) is None
    assert link_escape("static/logo", entries, outside) is None  # dangling inside is not leaving
    assert link_escape("via", entries, outside) is None  # pkg/up -> ../static: still inside
    assert "goes through .venv, which on the host is the release's venv" in link_escape("etc", entries, outside)
    assert "goes through instance" in link_escape("data", entries, outside)
    assert link_escape("climb", entries, outside) == "leads out of the release"
    assert link_escape("loop", entries, outside) == "has too many levels of symlinks"
    problems = release_link_problems(files, outside)
    assert [p.split(":")[0] for p in problems] == ["loop", "etc", "data", "climb"]


def test_a_link_through_the_venv_is_refused_though_the_controller_tree_keeps_it_inside(tmp_path):
    root = tmp_path / "app"
    app = app_at(root, {"app.py": "", "requirements.txt": "flask\n", ".venv/a/b/c/d/etc/passwd": ""})
    (root / "static").symlink_to(".venv/a/b/c/d/../../../../etc")  # inside on the controller
    (root / "x").symlink_to(".venv/../../../../etc")
    with pytest.raises(SourceError) as caught:
        build_artifact(app, python=HostPython("3.11.2"), cache_dir=tmp_path / "cache")
    assert [p.split(":")[0] for p in caught.value.problems] == ["static", "x"]
    assert "goes through .venv" in caught.value.problems[1]


# --------------------------------------------------------------------------- the app as a wheel

APP_BACKEND = '''
import base64, hashlib, pathlib, zipfile
def _line(name, data):
    return name + ",sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode() + "," + str(len(data))
def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    info = "demoapp-1.0.dist-info"
    files = {"demoapp/__init__.py": pathlib.Path("src/demoapp/__init__.py").read_bytes(),
             info + "/METADATA": b"Metadata-Version: 2.1\\nName: demoapp\\nVersion: 1.0\\n",
             info + "/WHEEL": b"Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
    record = "\\n".join([_line(n, d) for n, d in files.items()] + [info + "/RECORD,,", ""])
    with zipfile.ZipFile(wheel_directory + "/demoapp-1.0-py3-none-any.whl", "w") as zf:
        for n, d in files.items():
            zf.writestr(zipfile.ZipInfo(n, (1980, 1, 1, 0, 0, 0)), d)
        zf.writestr(zipfile.ZipInfo(info + "/RECORD", (1980, 1, 1, 0, 0, 0)), record)
    return "demoapp-1.0-py3-none-any.whl"
'''


def test_a_pyproject_package_is_built_as_a_wheel_and_installed_with_its_instance_in_shared(tmp_path):
    from pathlib import PurePosixPath

    from deployer.artifact.venv import venv_tree

    root = tmp_path / "app"
    app = app_at(root, {
        "pyproject.toml": '[project]\nname = "demoapp"\nversion = "1.0"\ndependencies = []\n'
                          '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
        "backend.py": APP_BACKEND, "src/demoapp/__init__.py": "VALUE = 1\n"}, shared=("instance",))
    app = App(name="demo", source=root, wsgi=WsgiTarget("demoapp", "create_app", True), shared=("instance",))
    first = build_artifact(app, python=HostPython("3.11.2"), cache_dir=tmp_path / "cache")
    again = build_artifact(app, python=HostPython("3.11.2"), cache_dir=tmp_path / "cache")
    assert first.wheel_names == ("demoapp-1.0-py3-none-any.whl",) and first.declared == "pyproject.toml"
    assert again.req_hash == first.req_hash  # the same source: the cached wheel, the same venv
    (root / "src" / "demoapp" / "__init__.py").write_text("VALUE = 2\n")
    changed = build_artifact(app, python=HostPython("3.11.2"), cache_dir=tmp_path / "cache")
    assert changed.req_hash != first.req_hash  # the code lives in the venv: a new venv
    tree = venv_tree(changed, PurePosixPath("/srv/demo/venvs") / changed.req_hash)
    with tarfile.open(tree.tarball) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert tar.extractfile("lib/python3.11/site-packages/demoapp/__init__.py").read() == b"VALUE = 2\n"
    assert members["var/demoapp-instance"].linkname == "../../../shared/instance"


def test_hash_lines_are_checked_against_what_was_fetched(tmp_path, index):
    good = hashlib.sha256((index / "deployerredis-5.0.1-py3-none-any.whl").read_bytes()).hexdigest()
    lines = offline(index, f"deployerredis==5.0.1 \\\n    --hash=sha256:{'0' * 64} \\\n    --hash=sha256:{good}")
    app = app_at(tmp_path / "app", {"app.py": "", "requirements.txt": lines})
    assert "deployerredis-5.0.1-py3-none-any.whl" in build_artifact(app, python=HOSTS, cache_dir=tmp_path / "c").wheel_names
    (tmp_path / "app" / "requirements.txt").write_text(lines.replace(good, "f" * 64))
    with pytest.raises(ReleaseError, match="do not match its --hash lines:\n  deployerredis-5.0.1-py3-none-any.whl: sha256"):
        build_artifact(app, python=HOSTS, cache_dir=tmp_path / "c")


def test_plan_says_what_was_resolved_and_for_which_interpreter(tmp_path, index):
    from deployer.cli.rollout import dependencies_line

    app = app_at(tmp_path / "app", {"app.py": "", "requirements.txt": offline(index, "deployerredis==5.0.1")})
    artifact = build_artifact(app, python=HOSTS, cache_dir=tmp_path / "cache")
    assert dependencies_line(artifact) == "dependencies: 2 wheels for CPython 3.11.2 on x86_64-manylinux_2_36 (from requirements.txt)"


def test_check_says_what_was_detected_and_refuses_an_app_with_none(tmp_path):
    from click.testing import CliRunner

    from deployer.cli import main

    root = tmp_path / "shop"
    app_at(root, {"pyproject.toml": PACKAGE, "src/shop/__init__.py": ""})
    inventory = tmp_path / "deploy.yml"
    inventory.write_text("app:\n  name: shop\n  source: shop\n  wsgi: shop:create_app()\n"
                         "hosts:\n  web1: {address: 198.18.0.10}\n")
    result = CliRunner().invoke(main, ["check", "-i", str(inventory)])
    assert result.exit_code == 0, result.output
    assert "requirements: pyproject.toml (detected)" in result.output
    (root / "pyproject.toml").unlink()
    result = CliRunner().invoke(main, ["check", "-i", str(inventory)])
    assert result.exit_code == 2 and "no dependencies declared" in result.output and "Traceback" not in result.output


def test_a_relative_source_resolves_from_where_deployer_runs(tmp_path, index, monkeypatch):
    app_at(tmp_path / "apps" / "one", {"app.py": "", "requirements.txt": offline(index, "deployertimeout==4.0.3")})
    monkeypatch.chdir(tmp_path)
    app = App(name="demo", source=Path("apps/one"), wsgi=WsgiTarget("app", "app"))
    assert build_artifact(app, python=HOSTS, cache_dir=Path("cache")).wheel_names == ("deployertimeout-4.0.3-py3-none-any.whl",)
