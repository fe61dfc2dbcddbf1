"""Debian's a2ensite/a2enconf strip their suffix with an unescaped regex: a name ending in "-conf"
must still enable its own site (the corpus app own-gunicorn-conf failed on lab3 with
"Site own-gunicorn does not exist!")."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from deployer import stacks
from tests import factories as f


@pytest.mark.parametrize("name", ["own-gunicorn-conf", "xconf", "hello"])
def test_the_enable_commands_enable_exactly_the_rendered_names(tmp_path: Path, name: str) -> None:
    if shutil.which("a2ensite") is None:
        pytest.skip("Debian's apache2 scripts are not installed")
    apache = stacks.PROXIES["apache"]
    host = f.host(server="mod_wsgi", proxy="apache")
    app = f.app(name=name)
    for sub in ("sites", "conf", "mods"):
        (tmp_path / f"{sub}-available").mkdir()
        (tmp_path / f"{sub}-enabled").mkdir()
    (tmp_path / "apache2.conf").touch()
    links = [link for link in apache.links(app, host, stacks.server_of(host)) if link.enable[0] != "a2enmod"]
    for link in links:
        (tmp_path / Path(link.path).parent.name.replace("-enabled", "-available") / Path(link.target).name).touch()
        done = subprocess.run(link.enable, env={**os.environ, "APACHE_CONFDIR": str(tmp_path)}, capture_output=True, text=True)
        assert done.returncode == 0, (link.enable, done.stdout + done.stderr)
        enabled = tmp_path / Path(link.path).parent.name / Path(link.path).name
        assert enabled.is_symlink() and os.readlink(enabled) == link.target, link
