"""A release's config snapshot, read on the host: what a rollback installs again.

Sent by ``deployer.core.facts.snapshot_command`` as ``python3 -c <this file> DIR``
(DIR: the release's ``.deployer/config``). Prints a JSON list of the files under
DIR, sorted, each with the absolute path it was installed at (its path under
DIR), mode, owner, group and contents. Standard library only, Python 3.9+.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import sys
from typing import Any, Dict, List


def snapshot(base: str) -> List[Dict[str, Any]]:
    files = []
    for dirpath, dirs, names in os.walk(base):
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(dirpath, name)
            st = os.stat(full)
            with open(full, encoding="utf-8", errors="replace") as f:
                files.append({"path": "/" + os.path.relpath(full, base), "mode": st.st_mode & 0o7777,
                              "owner": pwd.getpwuid(st.st_uid).pw_name, "group": grp.getgrgid(st.st_gid).gr_name,
                              "content": f.read()})
    return files


def main(argv: List[str]) -> None:
    print(json.dumps(snapshot(argv[1])))


if __name__ == "__main__":
    main(sys.argv)
