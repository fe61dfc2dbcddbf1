"""The app's wheel set for the hosts' exact interpreter, built on the controller and cached.

Hosts have no route to an index, so every wheel is fetched or built here. Resolution
runs ``uv pip compile --python-version X.Y.Z --python-platform ARCH-manylinux_2_N``
for the hosts' interpreter (from the facts): markers such as ``python_full_version <
"3.11.3"`` are decided for the hosts' Python, not the controller's. The pins are then
downloaded with ``pip download --no-deps --only-binary=:all:`` for the hosts' tags. A
pin with no such wheel (an sdist-only package) is built once with ``pip wheel`` and
cached by the sdist's sha256; a failed build names the package and what was missing
(a compiler, a header). Every wheel's tags are checked against the hosts before it
enters the cache: a wheel that does not fit is never shipped.

Wheel cache: ``cache_dir`` (default ``$XDG_CACHE_HOME/deployer/wheels``), one directory
per key = sha256(the hosts' interpreter, the text of every declaring file). A hit runs
no pip and no uv. What a local ``--find-links`` directory holds is not part of the key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deployer.artifact.dependencies import Declared, index_options, normal_name, pinned_hashes
from deployer.artifact.manifest import (
    AppFile, HostPython, ReleaseError, canonical_json, files_digest, is_pure_wheel, parse_wheel_name,
    platform_tags, requirements_lock_hash, wheel_misfit,
)

CACHE_FORMAT = "3"  # bump when the cache entry layout changes
TAIL_LINES = 15
REPRODUCIBLE_EPOCH = "315532800"  # 1980-01-01, the oldest time a zip (a wheel) can hold


class PipError(ReleaseError):
    """pip or uv failed on the controller; carries its last lines, not a traceback."""

    def __init__(self, what: str, command: Sequence[str], returncode: int, output: str, tool: str = "pip") -> None:
        self.what = what
        self.command = tuple(command)
        self.returncode = returncode
        self.tool = tool
        self.output = output
        self.tail = "\n".join(output.strip().splitlines()[-TAIL_LINES:])
        super().__init__(self.format())

    def format(self) -> str:
        tail = "\n".join(f"  | {line}" for line in self.tail.splitlines()) or "  | (no output)"
        return f"{self.what}: {self.tool} exited with {self.returncode}:\n{tail}"


class BuildError(ReleaseError):
    """An sdist did not build into a wheel: which package, and what was missing."""

    def __init__(self, requirement: str, log: str) -> None:
        self.requirement = requirement
        self.cause = diagnose_build(log)
        tail = "\n".join(f"  | {line}" for line in log.strip().splitlines()[-TAIL_LINES:])
        super().__init__(f"{requirement} has no wheel for the hosts and building it from its sdist failed"
                         f"{': ' + self.cause if self.cause else ''}\n{tail}")


def diagnose_build(log: str) -> str:
    """What a build log says was missing, in a user's words; "" when it says nothing known."""
    header = re.search(r"fatal error: ([\w./+-]+\.h): No such file or directory", log)
    if header:
        return f"the C header {header.group(1)} is missing on the controller (install its -dev package)"
    compiler = re.search(r"error: command '([^']+)' failed", log)
    if compiler:
        return f"the C compiler {os.path.basename(compiler.group(1))} is missing or failed on the controller"
    if re.search(r"can't find Rust compiler|rustc.*not found|cargo.*not found", log, re.I):
        return "a Rust compiler (rustc, cargo) is missing on the controller"
    module = re.search(r"ModuleNotFoundError: No module named '([\w.]+)'", log)
    if module:
        return f"the build needs the Python module {module.group(1)}, which its sdist does not declare"
    return ""


@dataclass(frozen=True)
class WheelSet:
    """A complete wheel-cache entry."""

    dir: Path
    wheels: tuple[str, ...]  # the installed set, sorted
    req_hash: str


# --------------------------------------------------------------------------- tools


def _run(command: list[str], *, cwd: Path, what: str, tool: str, env: dict | None = None) -> str:
    try:
        done = subprocess.run(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              check=False, stdin=subprocess.DEVNULL, env=env)
    except OSError as exc:
        raise PipError(what, command, -1, str(exc), tool) from None
    if done.returncode != 0:
        raise PipError(what, command, done.returncode, done.stdout, tool)
    return done.stdout


def run_pip(args: Sequence[str], *, cwd: Path, what: str) -> str:
    """``python -m pip ARGS`` on the controller; its output, or ``PipError``."""
    return _run([sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
                cwd=cwd, what=what, tool="pip")


def run_uv(args: Sequence[str], *, cwd: Path, what: str) -> str:
    """The ``uv`` that came with deployer (a dependency), ``ARGS``; its output, or ``PipError``."""
    from uv import find_uv_bin

    env = dict(os.environ, SOURCE_DATE_EPOCH=REPRODUCIBLE_EPOCH, UV_NO_PROGRESS="1")
    return _run([find_uv_bin(), *args], cwd=cwd, what=what, tool="uv", env=env)


# --------------------------------------------------------------------------- the cache


def wheel_cache_key(texts: Sequence[bytes], target: HostPython) -> str:
    doc = {"format": CACHE_FORMAT, "target": target.as_dict(),
           "requirements": [hashlib.sha256(t).hexdigest() for t in texts]}
    return hashlib.sha256(canonical_json(doc)).hexdigest()


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "deployer" / "wheels"


def ensure_wheels(app_source: Path, declared: Declared, files: Sequence[AppFile], *, target: HostPython,
                  cache_dir: Path, extra: Sequence[str] = ()) -> WheelSet:
    """The app's wheel set (with the ``extra`` requirements) from the cache, filling the entry on a miss."""
    app_source, cache_dir = app_source.resolve(), cache_dir.absolute()
    try:
        texts = [p.read_bytes() for p in declared.inputs]
    except OSError as exc:
        raise ReleaseError(f"{declared.label}: {exc}") from None
    if extra:
        texts.append("\n".join(extra).encode())
    key = wheel_cache_key(texts, target)
    deps = read_entry(cache_dir / key) or _fill(cache_dir, key, target, lambda work: _resolve_all(
        app_source, declared, work, target, cache_dir, extra))
    if not declared.build_app:
        return deps
    app_wheel = build_app_wheel(app_source, files, cache_dir)
    composed = hashlib.sha256(f"{key}\0{app_wheel.parent.name}".encode()).hexdigest()
    return read_entry(cache_dir / composed) or _fill(cache_dir, composed, target, lambda work: _link_wheels(
        [*(deps.dir / n for n in deps.wheels), app_wheel], work))


def _fill(cache_dir: Path, key: str, target: HostPython, make) -> WheelSet:
    """Build an entry in a scratch dir (``make(work)`` fills ``work/wheels``), then rename it in."""
    entry = cache_dir / key
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".building-", dir=cache_dir))
    try:
        make(work)
        wheels = sorted(p.name for p in (work / "wheels").iterdir() if p.name.endswith(".whl"))
        misfits = [m for m in (wheel_misfit(name, target) for name in wheels) if m]
        if misfits:
            raise ReleaseError("wheels that do not fit the hosts, not shipped:\n" + "\n".join(f"  {m}" for m in misfits))
        digests = {name: sha256_file(work / "wheels" / name) for name in wheels}
        info = {"format": CACHE_FORMAT, "target": target.as_dict(), "wheels": wheels, "sha256": digests,
                "req_hash": requirements_lock_hash(digests, target)}
        (work / "entry.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        try:
            os.rename(work, entry)
        except OSError:  # another build filled the same entry first: use that one
            if read_entry(entry) is None:
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = read_entry(entry)
    assert result is not None
    return result


def read_entry(entry: Path) -> WheelSet | None:
    try:
        info = json.loads((entry / "entry.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if info.get("format") != CACHE_FORMAT:
        return None
    return WheelSet(entry / "wheels", tuple(info["wheels"]), info["req_hash"])


def _link_wheels(paths: Sequence[Path], work: Path) -> None:
    (work / "wheels").mkdir()
    for path in paths:
        shutil.copyfile(path, work / "wheels" / path.name)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- resolving


def _resolve_all(source: Path, declared: Declared, work: Path, target: HostPython, cache_dir: Path,
                 extra: Sequence[str] = ()) -> None:
    """Pins for the hosts' interpreter (``extra`` resolved with the app's own), then their wheels, into ``work/wheels``."""
    options = index_options(declared.inputs)
    wanted = [str(_input_file(source, declared, work))]
    if extra:
        (work / "added.txt").write_text("".join(f"{line}\n" for line in extra), encoding="utf-8")
        wanted.append(str(work / "added.txt"))
    pinned = work / "pinned.txt"
    try:
        run_uv(["pip", "compile", "--quiet", "--no-header", "--no-annotate", "--python-version", target.version,
                "--python-platform", target.platform, "--output-file", str(pinned), *wanted],
               cwd=declared.path.parent, what=f"resolving {declared.label} for {target.describe()}")
    except PipError as exc:  # uv builds an sdist whose metadata is not static
        failed = re.search(r"Failed to (?:build|download and build) `([^`]+)`", exc.output)
        if failed and diagnose_build(exc.output):
            raise BuildError(failed.group(1), exc.output) from None
        raise
    pins = [line.strip() for line in pinned.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith(("#", "-"))]
    (work / "pins.txt").write_text("\n".join([*options, *pins]) + "\n", encoding="utf-8")
    fetched = download_wheels(work / "pins.txt", work, target=target, options=options, cache_dir=cache_dir,
                              cwd=declared.path.parent)
    built = {p.name for p in (work / "built").iterdir()}  # built here from an sdist: no index hash to match
    wrong = hash_mismatches({name: sha256_file(work / "wheels" / name) for name in fetched if name not in built},
                            pinned_hashes(declared.inputs))
    if wrong:
        raise ReleaseError(f"{declared.label}: fetched files do not match its --hash lines:\n" + "\n".join(wrong))


def hash_mismatches(digests: dict[str, str], pinned: dict[str, set[str]]) -> list[str]:
    """Each wheel of a project the requirements pin by hash whose sha256 is not among them."""
    wrong = []
    for name, digest in sorted(digests.items()):
        allowed = pinned.get(normal_name(parse_wheel_name(name)[0]))
        if allowed and digest not in allowed:
            wrong.append(f"  {name}: sha256 {digest} is none of the {len(allowed)} pinned")
    return wrong


def _input_file(source: Path, declared: Declared, work: Path) -> Path:
    """What ``uv pip compile`` reads: the requirements file, the lock's pins, or [project]'s list."""
    if declared.kind == "requirements":
        return declared.path
    if declared.kind == "uv.lock":
        out = work / "uv-export.txt"
        run_uv(["export", "--frozen", "--no-hashes", "--no-dev", "--no-emit-project", "--no-header",
                "--format", "requirements-txt", "--directory", str(source), "--output-file", str(out)],
               cwd=source, what="reading uv.lock")
        return out
    if declared.dependencies is None:  # dynamic: the backend says (uv builds the metadata)
        return declared.path
    out = work / "project-dependencies.txt"
    out.write_text("".join(f"{d}\n" for d in declared.dependencies), encoding="utf-8")
    return out


def pip_download_args(requirements: Path, dest: Path, target: HostPython, find_links: Sequence[Path] = ()) -> list[str]:
    args = ["download", "--no-deps", "--only-binary=:all:", "--python-version", target.version,
            "--implementation", "cp"]
    for tag in platform_tags(target.arch, target.glibc):
        args += ["--platform", tag]
    for link in find_links:
        args += ["--find-links", str(link)]
    return args + ["--dest", str(dest), "-r", str(requirements)]


def download_wheels(pins: Path, work: Path, *, target: HostPython, options: Sequence[str], cache_dir: Path,
                    cwd: Path) -> list[str]:
    """Fill ``work/wheels`` with the pins' wheels for the hosts; return their file names.

    A pin with no wheel for the hosts is built from its sdist (``build_sdist_wheel``);
    the download then runs again, finding it there.
    """
    built = work / "built"
    built.mkdir()
    attempts: list[str] = []
    dest = work / "download"
    dest.mkdir()
    has_pins = any(line.strip() and not line.lstrip().startswith("-") for line in pins.read_text(encoding="utf-8").splitlines())
    for _ in range(50 if has_pins else 0):
        try:
            run_pip(pip_download_args(pins, dest, target, [built] if attempts else []), cwd=cwd,
                    what=f"downloading wheels for {target.describe()}")
            break
        except PipError as exc:
            missing = re.findall(r"No matching distribution found for (\S+)", exc.tail)
            if not missing or missing[-1] in attempts:
                raise
            attempts.append(missing[-1])
            try:
                wheel = build_sdist_wheel(missing[-1], options, work, target=target, cache_dir=cache_dir, cwd=cwd)
            except PipError as build_error:
                if "No matching distribution found" in build_error.tail:
                    raise exc from None  # no sdist either: the download's words say it best
                raise
            shutil.copyfile(wheel, built / wheel.name)
    else:
        if has_pins:
            raise ReleaseError(f"{pins}: gave up after {len(attempts)} wheels built from source")
    (work / "wheels").mkdir()
    wheels = sorted(p.name for p in dest.iterdir() if p.name.endswith(".whl"))
    for name in wheels:
        os.replace(dest / name, work / "wheels" / name)
    return wheels


def build_sdist_wheel(requirement: str, options: Sequence[str], work: Path, *, target: HostPython,
                      cache_dir: Path, cwd: Path) -> Path:
    """One pin's sdist, built into a wheel once: cached under ``built/<sdist sha256>``."""
    one = work / "one-requirement.txt"
    one.write_text("\n".join([*options, requirement]) + "\n", encoding="utf-8")
    sdists = work / "sdists"
    shutil.rmtree(sdists, ignore_errors=True)
    try:  # pip prepares the sdist's metadata, which may compile already
        run_pip(["download", "--no-deps", "--no-binary=:all:", "--dest", str(sdists), "-r", str(one)], cwd=cwd,
                what=f"no wheel of {requirement} for {target.describe()}; fetching its sdist")
    except PipError as exc:
        if diagnose_build(exc.output):
            raise BuildError(requirement, exc.output) from None
        raise
    (sdist,) = sorted(sdists.iterdir())
    done = cache_dir / "built" / sha256_file(sdist)
    cached = sorted(done.glob("*.whl"))
    if cached and not wheel_misfit(cached[0].name, target):
        return cached[0]
    out = work / "build-out"
    shutil.rmtree(out, ignore_errors=True)
    try:
        run_pip(["wheel", "--no-deps", "--wheel-dir", str(out), str(sdist)], cwd=cwd,
                what=f"building {requirement} from source")
    except PipError as exc:
        raise BuildError(requirement, exc.output) from None
    (wheel,) = sorted(out.glob("*.whl"))
    refused = built_wheel_refusal(wheel.name, target, controller_fits(target))
    if refused:
        raise ReleaseError(f"no wheel of {requirement} for {target.describe()}, and its source {refused}")
    done.mkdir(parents=True, exist_ok=True)
    os.replace(wheel, done / wheel.name)
    return done / wheel.name


def controller_fits(target: HostPython) -> bool:
    """A platform wheel built here runs on the hosts: same Python X.Y and CPU, glibc no newer."""
    import platform

    libc, version = platform.libc_ver()
    glibc = tuple(int(x) for x in version.split(".")[:2]) if libc == "glibc" and version else None
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
    return (sys.platform == "linux" and glibc is not None and glibc <= target.glibc and here == target.minor
            and machine == target.arch)


def built_wheel_refusal(filename: str, target: HostPython, controller_is_like_hosts: bool) -> str | None:
    """Why a wheel built here from an sdist must not ship, or None (pure, or built where it fits)."""
    if is_pure_wheel(filename):
        return None
    if not controller_is_like_hosts:
        return (f"builds a platform-specific wheel ({filename}) on a controller unlike the hosts; "
                "pin a version that publishes manylinux wheels, or deploy from a controller like the hosts")
    misfit = wheel_misfit(filename, target)
    return f"builds a platform-specific wheel that does not fit: {misfit}" if misfit else None


def build_app_wheel(source: Path, files: Sequence[AppFile], cache_dir: Path) -> Path:
    """The app itself as a wheel (``uv build --wheel``), once per source content."""
    done = cache_dir / "app" / files_digest(files)
    cached = sorted(done.glob("*.whl"))
    if cached:
        return cached[0]
    done.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".app-", dir=done.parent))
    try:
        run_uv(["build", "--wheel", "--quiet", "--out-dir", str(work / "out"), str(source)], cwd=source,
               what=f"building the app {source.name} as a wheel")
        wheels = sorted((work / "out").glob("*.whl"))
        if len(wheels) != 1:
            raise ReleaseError(f"building {source} gave {len(wheels)} wheels, expected 1")
        if not is_pure_wheel(wheels[0].name):
            raise ReleaseError(f"the app builds a platform-specific wheel ({wheels[0].name}); only pure apps are built")
        (work / "wheel").mkdir()
        os.replace(wheels[0], work / "wheel" / wheels[0].name)
        try:
            os.rename(work / "wheel", done)
        except OSError:
            pass  # built at the same time elsewhere: the same content
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return sorted(done.glob("*.whl"))[0]
