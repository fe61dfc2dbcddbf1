"""The built-in verify checks: which apply to which host, and their verdicts on recorded probes. No SSH."""

from __future__ import annotations

import copy
import json
import subprocess

import pytest

from deployer.verify.checks import ALL_CHECKS, DEPENDS, applicable, blocked_by, judge, judge_all, probe_query, settings
from deployer.verify.probe import probe_command
from tests import factories as f

NOW = 1_800_000_000.0
DAY = 86400


def host_settings(server: str = "gunicorn", proxy: str = "nginx", tls: bool = False, **overrides) -> dict:
    inv = f.inventory(f.host(server=server, proxy=proxy, tls=tls, **overrides))
    return settings(inv, inv.hosts[0])


def good_probe(s: dict) -> dict:
    """What the probe reports on a host where every check passes."""
    user = s["app"]["user"]
    units = {u: {"active": "active", "sub": "running", "enabled": "enabled",
                 "users": [user] if u.endswith(".service") else [], "processes": 3} for u in s["units"]}
    units[s["proxy_service"]] = {"active": "active", "sub": "running", "enabled": "enabled",
                                 "users": ["root", "www-data"], "processes": 3}
    headers = {"x-content-type-options": "nosniff", "x-frame-options": "DENY",
               "referrer-policy": "strict-origin-when-cross-origin"}
    if s["tls"]:
        headers["strict-transport-security"] = "max-age=63072000"
    https_url = f"https://{s['server_name']}{s['app']['health']}"
    return {
        "now": NOW,
        "user": {"uid": 998, "shell": "/usr/sbin/nologin"},
        "current": {"link": "releases/r1", "exists": True, "in_releases": True, "has_app": True, "has_venv": True},
        "units": units,
        "daemons": [user, user] if s["process_marker"] else [],
        "site": {"enabled": True, "link": s["site_link"]},
        "listening": {"tcp": [s["http_port"], s["https_port"]] if s["tls"] else [s["http_port"]],
                      "unix": [s["layout"]["socket"]] if s["units"] else []},
        "env_file": {"mode": 0o640, "owner": "root", "group": user},
        "static_file": "style.css",
        "http": {
            "health": {"status": 200, "headers": dict(headers)},
            "not_found": {"status": 404, "headers": dict(headers)},
            "static": {"status": 200, "headers": dict(headers, **{"cache-control": "max-age=2592000"})},
            "redirect": {"status": 308, "headers": {"location": https_url}},
        },
        "tls": {"key_error": None, "verify_error": None, "same_cert": True,
                "peer": {"names": s["server_names"], "not_after": NOW + 90 * DAY}} if s["tls"] else None,
        "proxy_test": {"code": 0, "output": ""},
        "security": {"code": 0, "output": "→ Overall exposure level for hello.service: 1.6 OK 🙂"},
    }


def verdicts(s: dict, probe: dict) -> dict[str, str | None]:
    return {name: judge(name, s, probe) for name in applicable(s)}


def failures(s: dict, probe: dict) -> dict[str, str]:
    return {name: reason for name, reason in verdicts(s, probe).items() if reason}


@pytest.mark.parametrize("server, proxy", f.COMBINATIONS)
@pytest.mark.parametrize("tls", [False, True])
def test_a_good_host_passes_every_applicable_check(server, proxy, tls) -> None:
    s = host_settings(server, proxy, tls)
    assert failures(s, good_probe(s)) == {}


def test_which_checks_apply() -> None:
    gunicorn = applicable(host_settings("gunicorn", "nginx"))
    assert gunicorn == ("app-user", "current-release", "app-service", "proxy", "listening", "env-file",
                        "health", "static", "headers-on-404", "unit-security")
    mod_wsgi = applicable(host_settings("mod_wsgi", "apache", tls=True))
    assert "app-service" not in mod_wsgi and "unit-security" not in mod_wsgi  # apache runs the app
    assert {"wsgi-daemons", "tls-cert", "https-redirect", "hsts"} <= set(mod_wsgi)
    no_static = f.inventory(f.host(), app_=f.app(static=None))
    assert "static" not in applicable(settings(no_static, no_static.hosts[0]))
    assert set(ALL_CHECKS) == set(applicable(host_settings("gunicorn", "nginx", tls=True))) | {"wsgi-daemons", "app-processes"}


def test_prerequisites_run_before_what_depends_on_them() -> None:
    for name, needs in DEPENDS.items():
        assert all(ALL_CHECKS.index(need) < ALL_CHECKS.index(name) for need in needs), name
    assert blocked_by("health", {"proxy": "failed"}) == ("proxy",)
    assert blocked_by("health", {"proxy": "passed"}) == ()
    assert blocked_by("health", {}) == ()  # deselected with -k: not a reason to skip
    assert blocked_by("env-file", {"proxy": "failed"}) == ()


BREAKS = [
    ("app-user", lambda p: p.update(user=None), "user hello does not exist"),
    ("app-user", lambda p: p.update(user={"uid": 0, "shell": "/bin/sh"}), "uid 0"),
    ("current-release", lambda p: p["current"].update(link=None), "/srv/hello/current is not a symlink"),
    ("current-release", lambda p: p["current"].update(exists=False), "which does not exist"),
    ("current-release", lambda p: p["current"].update(has_app=False), "which has no app.py"),
    ("app-service", lambda p: p["units"]["hello.service"].update(active="inactive", sub="dead"),
     "hello.service is inactive (dead)"),
    ("app-service", lambda p: p["units"]["hello.socket"].update(enabled="disabled"), "hello.socket is not enabled"),
    ("app-service", lambda p: p["units"]["hello.service"].update(users=["hello", "root"]), "runs processes as root"),
    ("proxy", lambda p: p["units"]["nginx.service"].update(active="failed", sub="failed"), "nginx.service is failed"),
    ("proxy", lambda p: p["site"].update(enabled=False), "site not enabled: /etc/nginx/sites-enabled/hello.conf"),
    ("proxy", lambda p: p.update(proxy_test={"code": 1, "output": "nginx: [emerg] unknown directive"}),
     "nginx -t failed: nginx: [emerg] unknown directive"),
    ("listening", lambda p: p["listening"].update(unix=[]), "nothing listens on socket /run/hello.sock"),
    ("env-file", lambda p: p["env_file"].update(mode=0o644), "mode 0644 is world-accessible"),
    ("env-file", lambda p: p["env_file"].update(group="root"), "owned by root:root (expected root:hello)"),
    ("health", lambda p: p["http"]["health"].update(status=502), "answered 502 (expected 2xx)"),
    ("health", lambda p: p["http"].update(health={"error": "timed out"}), "no answer: timed out"),
    ("static", lambda p: p["http"]["static"]["headers"].pop("cache-control"), "not served by nginx"),
    ("static", lambda p: p.update(static_file=None), "no file under static/"),
    ("headers-on-404", lambda p: p["http"]["not_found"]["headers"].pop("x-frame-options"), "lacks X-Frame-Options"),
    ("unit-security", lambda p: p["security"].update(output="Overall exposure level for hello.service: 5.2 MEDIUM"),
     "rates hello.service 5.2 (must be below 2.0)"),
]


@pytest.mark.parametrize("check, breaker, reason", BREAKS, ids=[f"{b[0]}-{i}" for i, b in enumerate(BREAKS)])
def test_one_broken_fact_fails_one_check_with_a_reason(check, breaker, reason) -> None:
    s = host_settings()
    probe = copy.deepcopy(good_probe(s))
    breaker(probe)
    found = failures(s, probe)
    assert list(found) == [check], found
    assert reason in found[check]
    assert "\n" not in found[check]


TLS_BREAKS = [
    ("tls-cert", lambda p: p["tls"].update(key_error="KEY_VALUES_MISMATCH"), "certificate and key do not match"),
    ("tls-cert", lambda p: p["tls"].update(verify_error="certificate has expired"), "certificate has expired"),
    ("tls-cert", lambda p: p["tls"].update(same_cert=False), "serves another certificate"),
    ("tls-cert", lambda p: p["tls"]["peer"].update(names=["other.example"]), "not valid for web1.lab.example"),
    ("tls-cert", lambda p: p["tls"]["peer"].update(not_after=NOW + 10 * DAY), "expires in 10 days"),
    ("https-redirect", lambda p: p["http"]["redirect"].update(status=301), "answered 301 (expected 308"),
    ("hsts", lambda p: p["http"]["health"]["headers"].pop("strict-transport-security"), "no Strict-Transport-Security"),
]


@pytest.mark.parametrize("check, breaker, reason", TLS_BREAKS, ids=[f"{b[0]}-{i}" for i, b in enumerate(TLS_BREAKS)])
def test_tls_checks(check, breaker, reason) -> None:
    s = host_settings(tls=True)
    probe = copy.deepcopy(good_probe(s))
    breaker(probe)
    found = failures(s, probe)
    assert list(found) == [check], found
    assert reason in found[check]


def test_wildcard_certificate_covers_one_label() -> None:
    s = host_settings(tls=True, server_names=("web1.lab.example",))
    probe = good_probe(s)
    probe["tls"]["peer"]["names"] = ["*.lab.example"]
    assert judge("tls-cert", s, probe) is None
    probe["tls"]["peer"]["names"] = ["*.example"]
    assert "not valid for web1.lab.example" in judge("tls-cert", s, probe)


def test_mod_wsgi_daemons_must_run_as_the_app_user() -> None:
    s = host_settings("mod_wsgi", "apache")
    probe = good_probe(s)
    probe["daemons"] = ["www-data"]
    assert failures(s, probe) == {"wsgi-daemons": "mod_wsgi daemons (wsgi:hello) run as www-data (expected hello)"}
    probe["daemons"] = []
    assert "no mod_wsgi daemon process" in failures(s, probe)["wsgi-daemons"]


def test_settings_carry_no_secret_value() -> None:
    s = host_settings(tls=True)
    text = json.dumps(s)
    assert "s3cr3t-Key_value" not in text and s["app"]["secret_names"] == ["APP_SECRET_KEY"]


def test_probe_query_asks_https_when_tls() -> None:
    plain = probe_query(host_settings())
    assert plain["requests"]["health"] == ("http", 80, "/healthz") and "redirect" not in plain["requests"]
    assert plain["proxy_test"] == ["nginx", "-t", "-q"] and plain["security_unit"] == "hello.service"
    tls = probe_query(host_settings("mod_wsgi", "apache", tls=True))
    assert tls["requests"]["health"] == ("https", 443, "/healthz") and tls["requests"]["redirect"] == ("http", 80, "/healthz")
    assert tls["security_unit"] is None and tls["proxy_test"] == ["apache2ctl", "-t"]
    assert tls["tls"] == {"cert": "/etc/hello/tls/cert.pem", "key": "/etc/hello/tls/key.pem", "port": 443}


def test_probe_program_runs_and_reports_every_fact_without_contents(tmp_path) -> None:
    """The program itself, run here against an empty tree (nothing deployed): it must not crash."""
    s = host_settings(deploy_root=tmp_path)
    s["layout"]["env_file"] = str(tmp_path / "env")
    (tmp_path / "env").write_text('APP_SECRET_KEY="do-not-print"\n')
    (tmp_path / "env").chmod(0o640)
    query = probe_query(s)
    query["proxy_test"] = ["true"]
    out = subprocess.run(probe_command(query), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "do-not-print" not in out.stdout
    probe = json.loads(out.stdout)
    assert probe["env_file"]["mode"] == 0o640 and probe["current"]["link"] is None
    assert set(probe) >= {"user", "current", "units", "site", "listening", "env_file", "http", "proxy_test", "security"}
    assert "current-release" in failures(s, probe)


def test_judge_all_skips_what_a_failed_prerequisite_blocks() -> None:
    s = host_settings()
    probe = good_probe(s)
    probe["units"][s["proxy_service"]]["active"] = "inactive"
    results = {name: (outcome, reason) for name, outcome, reason in judge_all(s, probe, applicable(s))}
    assert results["proxy"][0] == "failed" and results["proxy"][1]
    assert results["health"] == ("skipped", "not checked: proxy failed")
    assert results["app-user"] == ("passed", "")
    assert [n for n, (o, _) in results.items() if o == "failed"] == ["proxy"]


class FakeRemote:
    """Answers the probe command with a recorded probe; what deploy's connection would do."""

    def __init__(self, host, probe: dict | None, code: int = 0) -> None:
        self.host, self.probe, self.code, self.commands = host, probe, code, []

    def run(self, argv, *, check=True, timeout=None, mask=True):
        from deployer.remote.ssh import CommandResult

        self.commands.append(argv)
        return CommandResult(self.code, json.dumps(self.probe) if self.probe else "", "" if self.code == 0 else "boom\n")


def test_deploy_verifier_judges_over_the_open_connection() -> None:
    from deployer.verify.runner import deploy_verifier

    inv = f.inventory(f.host())
    s = settings(inv, inv.hosts[0])
    good = FakeRemote(inv.hosts[0], good_probe(s))
    assert deploy_verifier(inv)(good) is None
    assert good.commands == [probe_command(probe_query(s))]  # one round trip, no pytest

    broken = good_probe(s)
    broken["env_file"]["mode"] = 0o644
    reason = deploy_verifier(inv)(FakeRemote(inv.hosts[0], broken))
    assert reason.startswith("env-file: ") and ";" not in reason

    assert "the probe failed on the host (exit 1): boom" in deploy_verifier(inv)(FakeRemote(inv.hosts[0], None, code=1))
