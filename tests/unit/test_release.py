"""The release artifact: file selection, determinism, hashes, the wheel cache, pip failures.

Most tests replace pip with a fake that writes stand-in wheels (``fake_pip``) and uv's
resolver with one that keeps the pins as written (``fake_uv``: resolution for the hosts'
interpreter is tested with the real uv in test_dependencies.py). Those
marked nothing but using ``real_pip`` run the real pip offline (``--no-index`` and
local sdists built by an in-tree backend). The ``network`` test downloads Flask and
gunicorn and installs them the way a host does.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import pytest

from deployer.artifact import manifest as manifest_mod
from deployer.artifact import venv as venv_mod
from deployer.artifact import wheels
from deployer.artifact.manifest import HostPython, ReleaseError, SourceError, host_arch, platform_tags, short_hash
from deployer.artifact.release import build_artifact
from deployer.artifact.venv import venv_command, venv_tree
from deployer.artifact.wheels import PipError
from deployer.errors import EXIT_BAD_INPUT, DeployerError
from deployer.core.layout import Layout
from deployer.config.model import App, WsgiTarget

NOW = datetime(2026, 11, 25, 16, 30, 0, tzinfo=timezone.utc)
REQS = "flask==3.1.3\ngunicorn==27.0.1\n"


def make_app(root: Path, files: dict[str, str | bytes], **kw) -> App:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return App(name="demo", source=root, wsgi=WsgiTarget("app", "app"), **kw)


def hello(root: Path, **kw) -> App:
    return make_app(root, {
        "app.py": "from flask import Flask\napp = Flask(__name__)\n",
        "requirements.txt": REQS,
        "templates/index.html": "<h1>hi</h1>\n",
        "static/style.css": "body {}\n",
    }, **kw)


class FakeUv:
    """Stands in for ``wheels.run_uv``: 'resolves' a requirements file to its own pins."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, args, *, cwd, what):
        self.calls.append(list(args))
        assert args[:2] == ["pip", "compile"]
        out = Path(args[args.index("--output-file") + 1])
        lines = []
        for source in map(Path, args[args.index("--output-file") + 2:]):  # every input file, as uv reads them
            for line in source.read_text().splitlines():
                line = line.split("#")[0].strip()
                if line.startswith(("-r", "-c")):
                    lines += [x.strip() for x in (source.parent / line.split()[1]).read_text().splitlines()]
                elif line and not line.startswith("-"):
                    lines.append(line)
        out.write_text("".join(f"{line}\n" for line in lines if line and not line.startswith("#")))
        return ""


class FakePip:
    """Stands in for ``wheels.run_pip``: 'downloads' one wheel per requirement line."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_after = fail_after

    def __call__(self, args, *, cwd, what):
        self.calls.append(list(args))
        if self.fail_after is not None and len(self.calls) > self.fail_after:
            raise AssertionError(f"pip called again: {args}")
        assert args[0] == "download"
        dest = Path(args[args.index("--dest") + 1])
        requirements = Path(args[args.index("-r") + 1])
        dest.mkdir(parents=True, exist_ok=True)
        for line in requirements.read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-"):
                name, version = line.split("==")
                tiny_wheel(dest, name, version)
        return ""


def tiny_wheel(dest: Path, name: str, version: str) -> Path:
    """A real (small) wheel: one module, metadata, RECORD with hashes, a console script."""
    import base64
    import zipfile

    def record_hash(data: bytes) -> str:
        return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"__version__ = {version!r}\n".encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": f"[console_scripts]\n{name} = {name}:__version__\n".encode(),
    }
    record = "".join(f"{path},{record_hash(data)},{len(data)}\n" for path, data in files.items()) + f"{info}/RECORD,,\n"
    path = dest / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        for member, data in [*files.items(), (f"{info}/RECORD", record.encode())]:
            whl.writestr(member, data)
    return path


@pytest.fixture
def fake_uv(monkeypatch):
    uv = FakeUv()
    monkeypatch.setattr(wheels, "run_uv", uv)
    return uv


@pytest.fixture
def fake_pip(monkeypatch, fake_uv):
    pip = FakePip()
    monkeypatch.setattr(wheels, "run_pip", pip)
    return pip


def names(tarball: Path) -> list[str]:
    with tarfile.open(tarball) as tar:
        return tar.getnames()


def manifest(tarball: Path) -> dict:
    with tarfile.open(tarball) as tar:
        return json.load(tar.extractfile(".deployer/manifest.json"))


# --------------------------------------------------------------------------- identity


def test_same_content_gives_same_hash_and_identical_bytes(tmp_path, fake_pip):
    app = hello(tmp_path / "app")
    first = build_artifact(app, cache_dir=tmp_path / "cache", now=NOW, out_dir=tmp_path / "out1")
    # later, mtimes touched, source copied elsewhere: the content is what counts
    for path in (tmp_path / "app").rglob("*"):
        os.utime(path, (1_000_000, 1_000_000))
    shutil.copytree(tmp_path / "app", tmp_path / "copy")
    later = datetime(2027, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    second = build_artifact(hello(tmp_path / "copy"), cache_dir=tmp_path / "cache", now=later,
                            out_dir=tmp_path / "out2")

    assert first.content_hash == second.content_hash
    assert first.app_tarball.read_bytes() == second.app_tarball.read_bytes()
    assert first.release_id == f"20261125T163000Z-{first.content_hash[:12]}"
    assert second.release_id == f"20270102T030405Z-{first.content_hash[:12]}"
    assert second.release_id.endswith("-" + short_hash(first.content_hash))
    assert first.app_tarball.name == f"demo-{short_hash(first.content_hash)}.tar.gz"


def test_tarball_entries_are_normalised(tmp_path, fake_pip):
    app = hello(tmp_path / "app")
    (tmp_path / "app" / "manage.sh").write_text("#!/bin/sh\n")
    (tmp_path / "app" / "manage.sh").chmod(0o775)
    (tmp_path / "app" / "app.py").chmod(0o600)
    artifact = build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)
    with tarfile.open(artifact.app_tarball) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert list(members) == [".deployer", ".deployer/manifest.json", "app.py", "manage.sh",
                             "requirements.txt", "static", "static/style.css", "templates",
                             "templates/index.html"]
    for m in members.values():
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "root", "root", 0)
    assert members["manage.sh"].mode == 0o755
    assert members["app.py"].mode == 0o644
    assert members["static"].mode == 0o755 and members["static"].isdir()
    raw = artifact.app_tarball.read_bytes()
    assert raw[4:8] == b"\0\0\0\0"  # gzip header mtime
    assert artifact.size == len(raw)


def test_manifest_lists_every_file_with_hash_size_and_mode(tmp_path, fake_pip):
    app = hello(tmp_path / "app")
    (tmp_path / "app" / "run").write_bytes(b"\x00binary\xff")
    (tmp_path / "app" / "run").chmod(0o700)
    artifact = build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)
    doc = manifest(artifact.app_tarball)

    assert doc["content_hash"] == artifact.content_hash
    assert doc["python"] == "3.11"
    assert doc["requirements"] == {"req_hash": artifact.req_hash, "wheels": list(artifact.wheel_names)}
    assert sorted(doc["files"]) == ["app.py", "requirements.txt", "run", "static/style.css",
                                    "templates/index.html"]
    for rel, entry in doc["files"].items():
        data = (tmp_path / "app" / rel).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["size"] == len(data)
    assert doc["files"]["run"]["mode"] == "0755"
    assert doc["files"]["app.py"]["mode"] == "0644"
    assert doc["dirs"] == ["static", "templates"]
    # the hash is of the manifest itself (without its own hash)
    rest = {k: v for k, v in doc.items() if k != "content_hash"}
    assert manifest_mod.content_hash_of(rest) == artifact.content_hash


def test_code_change_changes_content_hash_but_keeps_venv_and_cache(tmp_path, monkeypatch, fake_uv):
    pip = FakePip(fail_after=1)
    monkeypatch.setattr(wheels, "run_pip", pip)
    app = hello(tmp_path / "app")
    before = build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)
    (tmp_path / "app" / "app.py").write_text("from flask import Flask\napp = Flask('x')\n")
    after = build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)

    assert after.content_hash != before.content_hash
    assert after.req_hash == before.req_hash
    assert after.wheels_dir == before.wheels_dir
    assert len(pip.calls) == 1  # the second build did not run pip at all


def test_requirements_change_changes_req_hash(tmp_path, fake_pip):
    app = hello(tmp_path / "app")
    before = build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)
    (tmp_path / "app" / "requirements.txt").write_text(REQS + "requests==2.32.0\n")
    after = build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)

    assert after.req_hash != before.req_hash
    assert after.content_hash != before.content_hash
    assert "requests-2.32.0-py3-none-any.whl" in after.wheel_names
    assert len(fake_pip.calls) == 2


def test_comment_in_requirements_keeps_req_hash(tmp_path, fake_pip):
    """req_hash follows the installed set, not the text of requirements.txt."""
    app = hello(tmp_path / "app")
    before = build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)
    (tmp_path / "app" / "requirements.txt").write_text("# pinned for prod\n" + REQS)
    after = build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)
    assert len(fake_pip.calls) == 2  # new text: the cache cannot know, so pip runs
    assert after.req_hash == before.req_hash


def test_included_requirements_file_is_part_of_the_cache_key(tmp_path, fake_pip):
    app = make_app(tmp_path / "app", {"app.py": "", "requirements.txt": "-r base.txt\n",
                                      "base.txt": "flask==3.1.3\n"})
    build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)
    build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)
    assert len(fake_pip.calls) == 1
    (tmp_path / "app" / "base.txt").write_text("flask==3.1.2\n")
    build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)
    assert len(fake_pip.calls) == 2


def test_python_version_is_part_of_the_cache_key(tmp_path, fake_pip):
    app = hello(tmp_path / "app")
    a = build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)
    b = build_artifact(app, python="3.12", cache_dir=tmp_path / "cache", now=NOW)
    assert len(fake_pip.calls) == 2
    assert "3.12" in fake_pip.calls[1]
    assert a.req_hash != b.req_hash and a.content_hash != b.content_hash


def test_extra_requirements_join_the_apps_and_the_cache_key(tmp_path, fake_pip):
    """The server deployer adds (server_version.added) is installed beside the app's own wheels."""
    app = make_app(tmp_path / "app", {"app.py": "x = 1\n", "requirements.txt": "flask==3.1.3\n"})
    plain = build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)
    added = build_artifact(app, cache_dir=tmp_path / "cache", now=NOW, extra_requirements=("gunicorn==27.0.1",))
    assert plain.wheel_names == ("flask-3.1.3-py3-none-any.whl",)
    assert added.wheel_names == ("flask-3.1.3-py3-none-any.whl", "gunicorn-27.0.1-py3-none-any.whl")
    assert plain.req_hash != added.req_hash and len(fake_pip.calls) == 2


def test_cached_build_runs_no_pip(tmp_path, fake_pip):
    app = hello(tmp_path / "app")
    build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)
    build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)
    assert len(fake_pip.calls) == 1


# --------------------------------------------------------------------------- the venv tree


def test_venv_tree_installs_the_checked_wheels_for_the_venv_path(tmp_path, fake_pip):
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"  # this Python: the tree is byte-compiled
    artifact = build_artifact(hello(tmp_path / "app"), python=python, cache_dir=tmp_path / "cache", now=NOW)
    assert artifact.wheel_names == ("flask-3.1.3-py3-none-any.whl", "gunicorn-27.0.1-py3-none-any.whl")
    digests = {n: hashlib.sha256((artifact.wheels_dir / n).read_bytes()).hexdigest() for n in artifact.wheel_names}
    assert artifact.req_hash == manifest_mod.requirements_lock_hash(digests, artifact.target)
    venv = PurePosixPath("/srv/demo/venvs") / artifact.req_hash
    tree = venv_tree(artifact, venv)
    assert tree.precompiled and tree.sha256 == hashlib.sha256(tree.tarball.read_bytes()).hexdigest()
    with tarfile.open(tree.tarball) as tar:
        members = {m.name: m for m in tar.getmembers()}
        site = f"lib/python{python}/site-packages"
        assert f"{site}/flask/__init__.py" in members and f"{site}/gunicorn-27.0.1.dist-info/RECORD" in members
        assert any(n.startswith(f"{site}/flask/__pycache__/") and n.endswith(".pyc") for n in members)
        assert tar.extractfile(f"{site}/flask-3.1.3.dist-info/INSTALLER").read() == b"deployer\n"
        script = tar.extractfile("bin/gunicorn").read().decode()
        assert script.startswith(f"#!{venv}/bin/python\n") and members["bin/gunicorn"].mode & 0o111
        assert {m.uid for m in members.values()} == {0}
    # cached: the same file, no rebuild; another venv path gets its own tree
    assert venv_tree(artifact, venv) == tree
    assert venv_tree(artifact, PurePosixPath("/opt/demo/venvs/x")).tarball != tree.tarball


def test_venv_tree_for_another_python_is_not_precompiled(tmp_path, fake_pip):
    artifact = build_artifact(hello(tmp_path / "app"), python="3.9", cache_dir=tmp_path / "cache", now=NOW)
    tree = venv_tree(artifact, PurePosixPath("/srv/demo/venvs/x"))
    assert not tree.precompiled
    with tarfile.open(tree.tarball) as tar:
        assert not [n for n in tar.getnames() if n.endswith(".pyc")]
        assert "lib/python3.9/site-packages/flask/__init__.py" in tar.getnames()


def test_venv_tree_refuses_a_wheel_changed_in_the_cache(tmp_path, fake_pip):
    artifact = build_artifact(hello(tmp_path / "app"), cache_dir=tmp_path / "cache", now=NOW)
    (artifact.wheels_dir / "flask-3.1.3-py3-none-any.whl").write_bytes(b"tampered")
    with pytest.raises(ReleaseError, match="sha256 differs"):
        venv_tree(artifact, PurePosixPath("/srv/demo/venvs/x"))


def test_download_asks_for_the_hosts_python_and_platform(tmp_path, fake_pip):
    build_artifact(hello(tmp_path / "app"), cache_dir=tmp_path / "cache", now=NOW)
    (args,) = fake_pip.calls
    assert args[:7] == ["download", "--no-deps", "--only-binary=:all:", "--python-version", "3.11",
                        "--implementation", "cp"]
    platforms = [args[i + 1] for i, a in enumerate(args) if a == "--platform"]
    assert platforms == list(platform_tags(host_arch(os.uname().machine)))


def test_resolution_asks_uv_for_the_hosts_exact_interpreter(tmp_path, fake_pip, fake_uv):
    target = HostPython("3.11.2", arch="x86_64", glibc=(2, 36))
    artifact = build_artifact(hello(tmp_path / "app"), python=target, cache_dir=tmp_path / "cache", now=NOW)
    (args,) = fake_uv.calls
    assert args[args.index("--python-version") + 1] == "3.11.2"
    assert args[args.index("--python-platform") + 1] == "x86_64-manylinux_2_36"
    assert fake_pip.calls[0][fake_pip.calls[0].index("--python-version") + 1] == "3.11.2"
    assert artifact.python == "3.11" and artifact.target == target
    other = build_artifact(hello(tmp_path / "app"), python=HostPython("3.11.7"), cache_dir=tmp_path / "cache", now=NOW)
    assert other.req_hash != artifact.req_hash  # another interpreter: another cache entry and venv
    assert len(fake_uv.calls) == 2


def test_platform_tags_cover_manylinux_up_to_bookworm():
    tags = platform_tags("x86_64")
    assert tags[0] == "manylinux_2_36_x86_64"
    assert {"manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux2010_x86_64",
            "manylinux1_x86_64", "manylinux_2_5_x86_64", "linux_x86_64"} <= set(tags)
    assert "manylinux_2_37_x86_64" not in tags
    arm = platform_tags("aarch64")
    assert arm[0] == "manylinux_2_36_aarch64" and "manylinux2014_aarch64" in arm
    assert "manylinux1_aarch64" not in arm and "manylinux_2_16_aarch64" not in arm


def test_missing_requirements_file_is_a_source_error(tmp_path, fake_pip):
    app = make_app(tmp_path / "app", {"app.py": ""}, requirements="requirements/prod.txt")
    with pytest.raises(SourceError, match="requirements/prod.txt: requirements file not found"):
        build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)


def test_no_declaration_at_all_is_a_source_error(tmp_path, fake_pip):
    app = make_app(tmp_path / "app", {"app.py": ""})
    with pytest.raises(SourceError, match="no dependencies declared: add requirements.txt"):
        build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)


# --------------------------------------------------------------------------- what ships


def test_exclusions(tmp_path, fake_pip):
    root = tmp_path / "app"
    app = hello(root, shared=("instance", "data/uploads"), secrets_file=root / "config" / "secrets.txt")
    make_app(root, {
        ".git/HEAD": "ref\n", ".hg/x": "", ".svn/x": "",
        "__pycache__/app.cpython-311.pyc": "", "pkg/__pycache__/m.pyc": "", "pkg/m.py": "",
        "pkg/old.pyc": "", ".pytest_cache/x": "", ".mypy_cache/x": "", ".ruff_cache/x": "",
        "node_modules/x/index.js": "",
        ".venv/bin/python": "", "venv/pyvenv.cfg": "", "tools/env3/pyvenv.cfg": "", "tools/env3/lib/x": "",
        ".env": "A=1", ".env.local": "A=1", "prod.env": "A=1", "tls/site.pem": "", "tls/site.key": "",
        "config/secrets.txt": "A=1", "config/settings.py": "",
        "instance/counter.sqlite3": "", "data/uploads/a.png": "", "data/seed.json": "{}",
        ".deployerignore": "*.log\n/docs/\n!keep.log\nbuild/\n",
        "debug.log": "", "keep.log": "", "sub/trace.log": "", "docs/index.md": "", "sub/docs/x.md": "",
        "build/out.js": "",
    })
    artifact = build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)
    shipped = [n for n in names(artifact.app_tarball) if not n.startswith(".deployer")]
    assert shipped == [
        "app.py", "config", "config/settings.py", "data", "data/seed.json", "keep.log", "pkg",
        "pkg/m.py", "requirements.txt", "static", "static/style.css", "sub", "sub/docs",
        "sub/docs/x.md", "templates", "templates/index.html", "tls", "tools",
    ]


def test_ignore_file_cannot_bring_back_a_secret(tmp_path, fake_pip):
    app = hello(tmp_path / "app")
    make_app(tmp_path / "app", {".env": "A=1", ".deployerignore": "!.env\n"})
    artifact = build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)
    assert ".env" not in names(artifact.app_tarball)


def test_symlinks_inside_ship_as_links(tmp_path, fake_pip):
    root = tmp_path / "app"
    app = hello(root)
    (root / "static" / "favicon.css").symlink_to("style.css")
    (root / "assets").symlink_to(root / "static")  # absolute, but inside: made relative
    artifact = build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)
    with tarfile.open(artifact.app_tarball) as tar:
        links = {m.name: m.linkname for m in tar.getmembers() if m.issym()}
    assert links == {"assets": "static", "static/favicon.css": "style.css"}
    assert manifest(artifact.app_tarball)["links"] == links


def test_symlinks_out_of_the_app_are_refused_all_at_once(tmp_path, fake_pip):
    root = tmp_path / "app"
    app = hello(root)
    (tmp_path / "outside.txt").write_text("x")
    (root / "leak").symlink_to(tmp_path / "outside.txt")
    (root / "static" / "up").symlink_to("../../outside.txt")
    (root / "etc").symlink_to("/etc")
    (root / ".venv").symlink_to("/usr")  # excluded by name first: no complaint
    with pytest.raises(SourceError) as caught:
        build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)
    err = caught.value
    assert isinstance(err, DeployerError) and err.exit_code == EXIT_BAD_INPUT
    assert [p.split(":")[0] for p in err.problems] == ["etc", "leak", "static/up"]
    assert "symlink to '/etc' leads outside the app" in str(err)
    assert fake_pip.calls == []  # source problems come before any pip run


def test_reserved_deployer_dir_is_refused(tmp_path, fake_pip):
    app = hello(tmp_path / "app")
    make_app(tmp_path / "app", {".deployer/manifest.json": "{}"})
    with pytest.raises(SourceError, match="'.deployer' is reserved"):
        build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)


def test_ignore_rules_are_pure():
    rules = manifest_mod.IgnoreRules(shared=("instance",), secrets_file="conf/s.env.txt",
                                     ignore_lines=["*.log", "!keep.log"])
    assert rules.reason(".git", True) == "version control"
    assert rules.reason(".git", False) is None  # a file named .git (a worktree link) is odd but not VCS data
    assert rules.reason("a/b.pyc", False) == "cache"
    assert rules.reason("venv", True) == "virtualenv"
    assert rules.reason("conf/s.env.txt", False) == "secret"
    assert rules.reason("instance", True).startswith("shared path")
    assert rules.reason("instance/x/y", False).startswith("shared path")
    assert rules.reason("instances", True) is None
    assert rules.reason("x.log", False) == ".deployerignore"
    assert rules.reason("keep.log", False) is None
    assert rules.reason("app.py", False) is None


# --------------------------------------------------------------------------- host-side commands


def test_venv_command():
    layout = Layout("demo", PurePosixPath("/srv"))
    cmd = venv_command(layout, "abc", PurePosixPath("/tmp/up/venv.tar.gz"), "f" * 64, "3.11", precompiled=True)
    assert cmd == ("sh", "-c", venv_mod.VENV_SCRIPT, "sh", "/srv/demo/venvs/abc", "/tmp/up/venv.tar.gz",
                   "f" * 64, "python3.11", "no")
    assert venv_command(layout, "abc", PurePosixPath("/t.tgz"), "0", "3.12", precompiled=False)[-2:] == ("python3.12", "yes")


def test_short_hash_and_release_ids():
    digest = hashlib.sha256(b"x").hexdigest()
    assert short_hash(digest) == digest[:12]
    with pytest.raises(ValueError):
        short_hash("not-a-hash")
    naive = datetime(2026, 1, 2, 3, 4, 5)
    assert manifest_mod.release_id_for(digest, naive) == f"20260102T030405Z-{digest[:12]}"


def test_pip_error_shows_the_last_lines_only():
    output = "\n".join(f"line {i}" for i in range(40))
    err = PipError("downloading wheels", ["python", "-m", "pip"], 1, output)
    assert isinstance(err, DeployerError) and err.exit_code == 1
    assert "line 39" in err.format() and "line 24" not in err.format()
    assert err.format().startswith("downloading wheels: pip exited with 1:")


# --------------------------------------------------------------------------- real pip, offline

BACKEND = '''
import base64, hashlib, io, zipfile
TAG = {tag!r}

def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{{name}},sha256={{digest}},{{len(data)}}"

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name, version = {name!r}, "0.1"
    info = f"{{name}}-{{version}}.dist-info"
    files = {{
        f"{{name}}.py": b"VALUE = 42\\n",
        f"{{info}}/METADATA": f"Metadata-Version: 2.1\\nName: {{name}}\\nVersion: {{version}}\\n".encode(),
        f"{{info}}/WHEEL": f"Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: {{TAG}}\\n".encode(),
    }}
    record = "\\n".join([_record_line(n, d) for n, d in files.items()] + [f"{{info}}/RECORD,,", ""])
    filename = f"{{name}}-{{version}}-{{TAG}}.whl"
    with zipfile.ZipFile(f"{{wheel_directory}}/{{filename}}", "w") as zf:
        for n, d in files.items():
            zf.writestr(n, d)
        zf.writestr(f"{{info}}/RECORD", record)
    return filename
'''


def make_sdist(dist: Path, name: str, tag: str) -> None:
    """An sdist whose in-tree build backend needs nothing from an index."""
    dist.mkdir(parents=True, exist_ok=True)
    top = f"{name}-0.1"
    files = {
        f"{top}/pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
        f"{top}/backend.py": BACKEND.format(tag=tag, name=name),
        f"{top}/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n",
    }
    with tarfile.open(dist / f"{top}.tar.gz", "w:gz") as tar:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_pip_failure_raises_with_pips_last_lines(tmp_path):
    app = make_app(tmp_path / "app", {"app.py": "",
                                      "requirements.txt": "--no-index\nno-such-package-deployer==1.0\n"})
    with pytest.raises(PipError) as caught:
        build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)
    assert isinstance(caught.value, DeployerError)
    text = caught.value.format()
    assert "no-such-package-deployer" in text and text.startswith("resolving requirements.txt for CPython")
    assert "Traceback" not in text
    assert not [p for p in (tmp_path / "cache").iterdir()]  # nothing half-built left behind


def test_pure_sdist_is_built_into_a_wheel(tmp_path):
    make_sdist(tmp_path / "dist", "deployertinypure", "py3-none-any")
    app = make_app(tmp_path / "app", {"app.py": "", "requirements.txt":
                                      f"--no-index\n--find-links {tmp_path / 'dist'}\ndeployertinypure==0.1\n"})
    artifact = build_artifact(app, cache_dir=tmp_path / "cache", now=NOW)
    assert artifact.wheel_names == ("deployertinypure-0.1-py3-none-any.whl",)


def test_platform_specific_sdist_is_refused_when_built_unlike_the_hosts(tmp_path):
    make_sdist(tmp_path / "dist", "deployertinyc", "cp311-cp311-linux_x86_64")
    app = make_app(tmp_path / "app", {"app.py": "", "requirements.txt":
                                      "--no-index\n--find-links ../dist\ndeployertinyc==0.1\n"})
    older_hosts = HostPython("3.11.2", arch="x86_64", glibc=(2, 17))  # no controller glibc is that old
    with pytest.raises(ReleaseError, match="deployertinyc==0.1.*builds a platform-specific wheel"):
        build_artifact(app, python=older_hosts, cache_dir=tmp_path / "cache", now=NOW)


def test_built_wheels_are_cached_by_the_sdists_hash(tmp_path, monkeypatch):
    make_sdist(tmp_path / "dist", "deployertinypure", "py3-none-any")
    lines = f"--no-index\n--find-links {tmp_path / 'dist'}\ndeployertinypure==0.1\n"
    build_artifact(make_app(tmp_path / "a", {"app.py": "", "requirements.txt": lines}), cache_dir=tmp_path / "cache", now=NOW)
    (built,) = (tmp_path / "cache" / "built").iterdir()
    sdist = tmp_path / "dist" / "deployertinypure-0.1.tar.gz"
    assert built.name == hashlib.sha256(sdist.read_bytes()).hexdigest()
    calls = []
    real = wheels.run_pip
    monkeypatch.setattr(wheels, "run_pip", lambda args, **kw: calls.append(args[0]) or real(args, **kw))
    other = make_app(tmp_path / "b", {"app.py": "", "requirements.txt": "# another app\n" + lines})
    assert build_artifact(other, cache_dir=tmp_path / "cache", now=NOW).wheel_names == ("deployertinypure-0.1-py3-none-any.whl",)
    assert "wheel" not in calls  # the sdist was fetched again, but not built again


# --------------------------------------------------------------------------- real pip, the index


def index_reachable() -> bool:
    probe = [sys.executable, "-m", "pip", "--disable-pip-version-check", "index", "versions", "pip",
             "--timeout", "10", "--retries", "1"]
    return subprocess.run(probe, capture_output=True, timeout=60).returncode == 0


@pytest.mark.network
def test_flask_gunicorn_wheels_install_offline_on_a_host(tmp_path):
    """The whole path: download for the hosts, build the venv tree, run the host's commands."""
    if not index_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail("the package index is unreachable (CI=true: failing, not skipping)")
        pytest.skip("the package index is unreachable")
    artifact = build_artifact(hello(tmp_path / "app"), cache_dir=tmp_path / "cache", now=NOW)
    names_ = {n.split("-")[0] for n in artifact.wheel_names}
    assert {"flask", "gunicorn", "werkzeug", "jinja2", "markupsafe"} <= names_

    layout = Layout("demo", PurePosixPath(tmp_path / "host" / "srv"))
    Path(layout.venvs).mkdir(parents=True)
    venv = Path(layout.venvs) / artifact.req_hash
    tree = venv_tree(artifact, PurePosixPath(venv))
    uploaded = tmp_path / "host" / "venv.tar.gz"
    shutil.copyfile(tree.tarball, uploaded)
    # Debian's python3.11 is what the hosts run; use it when this machine has it
    env = dict(os.environ, PATH=os.pathsep.join(["/usr/bin", os.environ.get("PATH", "")]))
    cmd = venv_command(layout, artifact.req_hash, PurePosixPath(uploaded), tree.sha256, "3.11", tree.precompiled)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{shlex.join(cmd)}\n{done.stdout}\n{done.stderr}"
    assert (venv / ".complete").is_file() and not uploaded.exists()
    assert not (venv / "bin" / "pip").exists()
    check = subprocess.run([str(venv / "bin" / "gunicorn"), "--version"], capture_output=True, text=True)
    assert check.returncode == 0 and "27.0.1" in check.stdout + check.stderr, check.stderr
    check = subprocess.run([str(venv / "bin" / "python"), "-X", "importtime", "-c", "import flask"],
                           capture_output=True, text=True, env={**env, "PYTHONDONTWRITEBYTECODE": "1"})
    assert check.returncode == 0, check.stderr
    # the pycs made on the controller are used as they are (nothing written: the flag above)
    assert list((venv / "lib" / "python3.11" / "site-packages" / "flask" / "__pycache__").glob("*.pyc"))
