"""Command builders: every remote action as an argument tuple. Pure, no I/O.

Programs run on the host (restart, health) are files in ``deployer.hostside``,
sent as their text: reading that package data is the one read allowed here.

Multi-step actions that must happen together use a constant ``sh -c`` script
whose inputs arrive as positional arguments ("$1"...), never pasted into the
script text, so no value can change what the shell parses.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import PurePosixPath

from deployer import hostside
from deployer.core.layout import Layout

Command = tuple[str, ...]


def sh(script: str, *args: object) -> Command:
    return ("sh", "-c", script, "sh", *(str(a) for a in args))


def apt_install(packages: Iterable[str]) -> Command:
    return ("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q",
            "--no-install-recommends", *packages)


def create_user(name: str, home: PurePosixPath) -> Command:
    """A system user with no login shell and no password: the app's identity."""
    return ("useradd", "--system", "--user-group", "--home-dir", str(home), "--no-create-home",
            "--shell", "/usr/sbin/nologin", name)


def prepare_dirs(layout: Layout, user: str, ssh_user: str, shared: Iterable[str],
                 shared_links: Iterable[tuple[str, PurePosixPath]] = ()) -> Command:
    """The app root's directories; those under ``shared/`` created by the app user itself.

    ``shared/`` belongs to the app, so whatever is in it may be a link the app
    planted (``shared/instance -> /usr/local/bin``). Root following it would hand
    the target to the app; the app user following it can reach only what it
    could reach anyway, and fails on anything it does not own. The same holds for
    nested shared paths (``pkg/static/.webassets-cache``: ``install -d`` makes the
    parents, as the app) and for ``shared_links``: (path under shared/, target)
    links to the root-owned ``app.files`` that the app user makes in its own dirs.
    """
    script = (
        'set -e; root=$1 user=$2 ssh_user=$3 count=$4; shift 4; cd /\n'
        'install -d -m 0755 "$root" "$root/releases" "$root/venvs"\n'
        'install -d -m 0755 -o "$user" -g "$user" "$root/shared"\n'
        'install -d -m 0700 "$root/.deployer"\n'
        'install -d -m 0700 -o "$ssh_user" "$root/.deployer/uploads"\n'
        'while [ "$count" -gt 0 ]; do runuser -u "$user" -- install -d -m 0750 "$root/shared/$1"; shift; count=$((count-1)); done\n'
        'while [ $# -gt 0 ]; do runuser -u "$user" -- sh -c \'mkdir -p "$(dirname "$1")" && ln -sfn "$2" "$1"\' sh "$root/shared/$1" "$2"; shift 2; done\n'
    )
    shared = tuple(shared)
    pairs = [str(x) for rel, target in shared_links for x in (rel, target)]
    return sh(script, layout.app_root, user, ssh_user, len(shared), *shared, *pairs)


def take_lock(layout: Layout, info: dict[str, object]) -> Command:
    """``mkdir`` is atomic: exactly one deploy creates the lock directory."""
    script = 'set -e; mkdir "$1"; printf "%s\\n" "$2" > "$1/info"'
    return sh(script, layout.state_dir / "lock", json.dumps(info, sort_keys=True))


def release_lock(layout: Layout) -> Command:
    return ("rm", "-rf", "--", str(layout.state_dir / "lock"))


def unpack_release(layout: Layout, release_id: str, tarball: PurePosixPath, req_hash: str,
                   shared: Iterable[str], file_links: Iterable[tuple[str, PurePosixPath]] = ()) -> Command:
    """Unpack into a temp dir, link venv, shared paths and ``app.files``, then rename: a release appears whole or not at all.

    Root makes these links only inside the fresh, root-owned temp dir: a nested
    shared path's parents (``pkg/static`` of ``pkg/static/.webassets-cache``) are
    the release's own directories, never a path the app can write (schema: no
    shared path inside another; source: no shipped link on the way).
    """
    script = (
        'set -e; final=$1 tar=$2 venv=$3 shared_root=$4 count=$5; shift 5; tmp="$final.partial"\n'
        'rm -rf "$tmp"; mkdir -p "$tmp"\n'
        'tar -xzf "$tar" -C "$tmp" --touch --no-same-owner --no-same-permissions\n'
        'chmod -R u=rwX,go=rX "$tmp"\n'
        'ln -sfn "../../venvs/$venv" "$tmp/.venv"\n'
        'while [ "$count" -gt 0 ]; do p=$1; shift; count=$((count-1))\n'
        '  rm -rf "$tmp/$p"; mkdir -p "$(dirname "$tmp/$p")"; ln -s "$shared_root/$p" "$tmp/$p"; done\n'
        'while [ $# -gt 0 ]; do rm -rf "$tmp/$1"; mkdir -p "$(dirname "$tmp/$1")"; ln -s "$2" "$tmp/$1"; shift 2; done\n'
        'mkdir -p "$tmp/.deployer"; rm -f "$tar"\n'
        'mv -T "$tmp" "$final"\n'
    )
    shared = tuple(shared)
    pairs = [str(x) for rel, target in file_links for x in (rel, target)]
    return sh(script, layout.release(release_id), tarball, req_hash, layout.shared, len(shared), *shared, *pairs)


def relink_venv(layout: Layout, release_id: str, req_hash: str) -> Command:
    return ("ln", "-sfn", f"../../venvs/{req_hash}", str(layout.release(release_id) / ".venv"))


def install_files(entries: Iterable[tuple[str, str, str, PurePosixPath, PurePosixPath]]) -> Command:
    """Install staged files: (mode, owner, group, source, target) each, written beside then renamed."""
    script = (
        'set -e\n'
        'while [ $# -gt 0 ]; do\n'
        '  mkdir -p "$(dirname "$5")"\n'
        '  install -m "$1" -o "$2" -g "$3" "$4" "$5.deployer-new"\n'
        '  mv -f "$5.deployer-new" "$5"\n'
        '  shift 5\n'
        'done\n'
    )
    args: list[object] = []
    for mode, owner, group, source, target in entries:
        args += [mode, owner, group, source, target]
    return sh(script, *args)


def backup_files(targets: Iterable[PurePosixPath]) -> Command:
    """Keep the live version of each file as ``.deployer-old`` (or note it was absent)."""
    script = (
        'set -e\n'
        'for f in "$@"; do\n'
        '  mkdir -p "$(dirname "$f")"\n'
        '  rm -f "$f.deployer-old" "$f.deployer-absent"\n'
        '  if [ -e "$f" ]; then cp -a "$f" "$f.deployer-old"; else : > "$f.deployer-absent"; fi\n'
        'done\n'
    )
    return sh(script, *targets)


def restore_files(targets: Iterable[PurePosixPath]) -> Command:
    script = (
        'for f in "$@"; do\n'
        '  if [ -e "$f.deployer-old" ]; then mv -f "$f.deployer-old" "$f";\n'
        '  elif [ -e "$f.deployer-absent" ]; then rm -f "$f" "$f.deployer-absent"; fi\n'
        'done\n'
    )
    return sh(script, *targets)


def drop_backups(targets: Iterable[PurePosixPath]) -> Command:
    return sh('for f in "$@"; do rm -f "$f.deployer-old" "$f.deployer-absent"; done', *targets)


def switch_current(layout: Layout, release_id: str) -> Command:
    """``ln -s`` to a temp name, then rename over ``current``: readers see old or new, never none."""
    tmp = layout.app_root / ".current.tmp"
    return sh('set -e; ln -sfn "$1" "$2"; mv -T "$2" "$3"', f"releases/{release_id}", tmp, layout.current)


def systemctl(*args: str) -> Command:
    return ("systemctl", *args)


def restart_daemons(service: str, marker: str) -> Command:
    """SIGUSR1 to mod_wsgi's daemon processes ``marker`` (display-name) that ``service``'s main process runs.

    Each finishes its requests (up to graceful-timeout) and exits; Apache starts
    a new one, which resolves ``current`` again. Apache itself is not reloaded,
    so its listener socket for the group stays: requests wait there instead of
    failing with 503 as they can while a graceful reload renews that socket.
    """
    return hostside.command("restart", service, marker)


def mark_bad(layout: Layout, release_id: str, reason: str) -> Command:
    """Mark a release that was unpacked; one that never was must not appear as an (empty) release dir.

    A release dir the next deploy of the same code would find, reuse without
    uploading and switch to, were it created here after an early failure.
    """
    return sh('[ -d "$1" ] || exit 0; mkdir -p "$1/.deployer" && printf "%s\\n" "$2" > "$1/.deployer/BAD"',
              layout.release(release_id), reason)


def clear_bad(layout: Layout, release_id: str) -> Command:
    return ("rm", "-f", str(layout.release(release_id) / ".deployer" / "BAD"))


def append_log(layout: Layout, record: dict[str, object]) -> Command:
    return sh('printf "%s\\n" "$2" >> "$1"', layout.state_dir / "releases.log", json.dumps(record, sort_keys=True))


def remove_paths(paths: Iterable[PurePosixPath]) -> Command:
    return ("rm", "-rf", "--", *(str(p) for p in paths))


def health_check(scheme: str, port: int, host_header: str, path: str, deadline: float) -> Command:
    """Request ``path`` through the proxy on the host itself, retrying until ``deadline`` seconds."""
    return hostside.command("health", scheme, str(port), host_header, path, str(deadline))
