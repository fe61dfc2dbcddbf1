"""The lab's pure helpers: names, parsers, command builders. No root, no I/O."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from deployer.lab import base, commands, naming, parse
from deployer.lab.cli import format_table, lab as lab_group
from deployer.lab.lab import LabHost


# --- naming ---------------------------------------------------------------

@pytest.mark.parametrize("i,name,addr,gw", [
    (1, "lab1", "198.18.1.2", "198.18.1.1"),
    (42, "lab42", "198.18.42.2", "198.18.42.1"),
    (255, "lab255", "198.18.255.2", "198.18.255.1"),
])
def test_host_names_and_addresses(i, name, addr, gw):
    assert naming.host_name(i) == name
    assert naming.host_index(name) == i
    assert naming.host_address(i) == addr
    assert naming.gateway_address(i) == gw
    assert naming.veth_name(name) == "ve-" + name
    assert len(naming.veth_name(name)) <= 15  # IFNAMSIZ, or nspawn hashes the name


@pytest.mark.parametrize("bad", ["lab0", "lab01", "lab256", "web1", "lab", "lab1x", "LAB1"])
def test_not_host_names(bad):
    assert not naming.is_host_name(bad)
    with pytest.raises(ValueError, match="not a lab host name"):
        naming.host_index(bad)


def test_names_for_and_count_limits():
    assert naming.names_for(3) == ["lab1", "lab2", "lab3"]
    for bad in (0, -1, 256):
        with pytest.raises(ValueError, match="expected 1-255, got"):
            naming.names_for(bad)


def test_sort_names_is_numeric():
    assert naming.sort_names(["lab10", "lab2", "lab1"]) == ["lab1", "lab2", "lab10"]


# --- parse ----------------------------------------------------------------

MOUNTINFO = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
44 27 0:39 / /var/lib/deployer-lab/hosts/lab1/root rw - overlay overlay rw,lowerdir=/b
45 44 0:40 / /var/lib/deployer-lab/hosts/lab1/root/proc rw - proc proc rw
46 27 0:41 / /var/lib/deployer-lab/hosts/lab10/root rw - overlay overlay rw
47 27 0:42 / /srv/with\\040space rw - tmpfs tmpfs rw
"""


def test_parse_mountinfo_unescapes():
    mounts = parse.parse_mountinfo(MOUNTINFO)
    assert mounts[0] == parse.Mount("/", "ext4", "/dev/vda", "rw")
    assert mounts[-1].target == "/srv/with space"


def test_mounts_under_is_deepest_first_and_exact_on_prefixes():
    mounts = parse.parse_mountinfo(MOUNTINFO)
    assert parse.mounts_under(mounts, "/var/lib/deployer-lab/hosts/lab1") == [
        "/var/lib/deployer-lab/hosts/lab1/root/proc",
        "/var/lib/deployer-lab/hosts/lab1/root",
    ]  # and not lab10
    assert parse.mounts_under(mounts, "/nowhere") == []


def test_cgroup_hierarchies_v1_named_and_v2():
    assert parse.cgroup_hierarchies(parse.parse_mountinfo(MOUNTINFO)) == [
        "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified",
    ]


def test_parse_stat_survives_odd_comm():
    text = "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0\n"
    assert parse.parse_stat(text) == ("S", 1, 98765)


def test_parse_pids_and_pidfile():
    assert parse.parse_pids("12\n34\n") == [12, 34]
    assert parse.parse_pids("") == []
    assert parse.parse_pidfile("12 345\n") == (12, 345)
    assert parse.parse_pidfile("garbage") is None
    assert parse.parse_pidfile("") is None


DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
"""


def test_mirror_from_deb822_sources():
    texts = [("debian.sources", DEB822), ("nodesource.sources", "Types: deb\nURIs: https://x/node\n"
                                          "Suites: nodistro\nComponents: main\n")]
    assert parse.mirror_from_sources(texts) == "http://deb.debian.org/debian"


def test_mirror_from_one_line_sources_skips_security_and_options():
    text = ("deb http://security.debian.org/debian-security bookworm-security main\n"
            "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main contrib\n")
    assert parse.mirror_from_sources([("sources.list", text)]) == "http://mirror.example/debian"


def test_mirror_falls_back_to_deb_debian_org():
    assert parse.mirror_from_sources([]) == parse.DEFAULT_MIRROR
    trixie = [("x.list", "deb http://m/debian trixie main\n")]
    assert parse.mirror_from_sources(trixie) == parse.DEFAULT_MIRROR


def test_known_hosts_text_drops_comments():
    text = parse.known_hosts_text([("198.18.1.2", "ssh-ed25519 AAAA1 root@lab1\n"),
                                   ("198.18.2.2", "ssh-ed25519 AAAA2")])
    assert text == "198.18.1.2 ssh-ed25519 AAAA1\n198.18.2.2 ssh-ed25519 AAAA2\n"


def test_ssh_banner():
    assert parse.is_ssh_banner(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6\r\n")
    assert not parse.is_ssh_banner(b"")
    assert not parse.is_ssh_banner(b"HTTP/1.1 400")


# --- commands -------------------------------------------------------------

def test_debootstrap_command():
    cmd = commands.debootstrap(Path("/l/base.tmp.1"), "http://m/debian", ("a", "b"),
                               keyring=Path("/k.gpg"))
    assert cmd == ("debootstrap", "--variant=minbase", "--components=main", "--include=a,b",
                   "--keyring=/k.gpg", "bookworm", "/l/base.tmp.1", "http://m/debian")


def test_overlay_mount_and_bad_paths():
    assert commands.mount_overlay(Path("/b"), Path("/u"), Path("/w"), Path("/r")) == (
        "mount", "-t", "overlay", "overlay", "-o", "lowerdir=/b,upperdir=/u,workdir=/w", "/r")
    with pytest.raises(ValueError, match="overlayfs cannot take a path"):
        commands.mount_overlay(Path("/a,b"), Path("/u"), Path("/w"), Path("/r"))
    with pytest.raises(ValueError):
        commands.mount_overlay(Path("/b"), Path("/u:x"), Path("/w"), Path("/r"))


def test_nspawn_command_boots_detached_without_a_bus():
    cmd = commands.nspawn(Path("/h/lab2/root"), "lab2", "0" * 8 + "-0000-0000-0000-" + "0" * 12)
    assert cmd[0] == "systemd-nspawn"
    for flag in ("--boot", "--register=no", "--keep-unit", "--network-veth", "--machine=lab2",
                 "--directory=/h/lab2/root"):
        assert flag in cmd


def test_container_network_runs_in_the_leaders_netns():
    cmds = commands.container_network(4321, "198.18.2.2")
    assert cmds[0] == ("nsenter", "-t", "4321", "-n", "ip", "addr", "replace", "198.18.2.2/30",
                       "dev", "host0")
    assert all(c[:5] == ("nsenter", "-t", "4321", "-n", "ip") for c in cmds)
    assert not any("route" in c for c in cmds)  # no way out, by design


def test_controller_network():
    assert commands.controller_network("ve-lab2", "198.18.2.1") == [
        ("ip", "addr", "replace", "198.18.2.1/30", "dev", "ve-lab2"),
        ("ip", "link", "set", "dev", "ve-lab2", "up"),
    ]


def test_ssh_command_is_strict_and_ends_options_before_the_host():
    cmd = commands.ssh(Path("/l/id_ed25519"), Path("/l/known_hosts"), "198.18.2.2",
                       ("systemctl", "--version"), batch=True, connect_timeout=3)
    assert cmd[0] == "ssh"
    assert "StrictHostKeyChecking=yes" in cmd
    assert "UserKnownHostsFile=/l/known_hosts" in cmd
    assert cmd[cmd.index("-i") + 1] == "/l/id_ed25519"
    assert "BatchMode=yes" in cmd and "ConnectTimeout=3" in cmd
    assert cmd[-4:] == ("--", "root@198.18.2.2", "systemctl", "--version")


def test_ssh_keygen_is_ed25519_without_passphrase():
    assert commands.ssh_keygen(Path("/k"), "c") == (
        "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "c", "-f", "/k")


# --- base recipe ----------------------------------------------------------

def test_recipe_hash_follows_the_package_list(monkeypatch):
    before = base.recipe_hash()
    assert before == base.recipe_hash()
    monkeypatch.setattr(base, "PACKAGES", base.PACKAGES + ("htop",))
    assert base.recipe_hash() != before


def test_package_list_has_what_deploys_need():
    for pkg in ("openssh-server", "systemd-sysv", "nginx", "apache2", "libapache2-mod-wsgi-py3",
                "uwsgi-plugin-python3", "python3-venv"):
        assert pkg in base.PACKAGES


# --- CLI without root -----------------------------------------------------

def test_table():
    out = format_table([LabHost("lab1", "198.18.1.2", "up"), LabHost("lab10", "198.18.10.2", "broken")])
    assert out.splitlines() == [
        "NAME   ADDRESS      STATE",
        "lab1   198.18.1.2   up",
        "lab10  198.18.10.2  broken",
    ]


@pytest.mark.parametrize("args", [["up"], ["down"], ["status"], ["ssh", "lab1", "true"]])
def test_cli_needs_root(monkeypatch, args):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    res = CliRunner().invoke(lab_group, args)
    assert res.exit_code == 2
    assert "needs root" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert "Traceback" not in res.output


def test_cli_rejects_bad_input_in_one_line(monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 0)
    res = CliRunner().invoke(lab_group, ["ssh", "web1"])
    assert res.exit_code == 2 and "not a lab host name: 'web1'" in res.output
    res = CliRunner().invoke(lab_group, ["up", "--hosts", "0"])
    assert res.exit_code == 2 and "expected 1-255, got 0" in res.output


def test_route_dev():
    assert parse.route_dev("198.18.1.2 dev ve-lab1 src 198.18.1.1 uid 0 \\    cache \n") == "ve-lab1"
    assert parse.route_dev("198.18.9.2 via 192.0.2.1 dev eth0 src 192.0.2.2 uid 0") == "eth0"
    assert parse.route_dev("") is None
    assert commands.ip_route_get("198.18.1.2") == ("ip", "-o", "route", "get", "198.18.1.2")


def test_cli_ssh_refuses_a_host_not_routed_through_its_veth(monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr("deployer.lab.host.routed_via_veth", lambda name: False)
    monkeypatch.setattr("os.execvp", lambda *a: pytest.fail("must not exec ssh"))
    res = CliRunner().invoke(lab_group, ["ssh", "lab9", "true"])
    assert res.exit_code == 1
    assert res.output.strip() == "Error: lab9 is not up (no route through ve-lab9); run: deployer lab up"


def test_lock_waits_then_names_the_holder(tmp_path):
    from deployer.lab.run import LabError
    from deployer.lab.state import LabPaths, locked

    paths = LabPaths(tmp_path)
    said = []
    with locked(paths.lock):
        with pytest.raises(LabError, match="another lab command still holds .*/lock after 0.3 s"):
            with locked(paths.lock, wait=0.3, say=said.append):
                pass
    assert len(said) == 1 and said[0].startswith("waiting for another lab command")
    with locked(paths.lock, wait=0):  # free again
        pass
