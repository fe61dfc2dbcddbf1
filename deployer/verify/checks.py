"""The built-in checks: which apply to a host, and how each judges the probe. Pure.

Every check has a stable, readable name and, when it fails, a one-line reason.
A check that does not apply to a host's settings is not run there (no app
units under mod_wsgi, where Apache runs the app; no TLS checks without tls).
A check whose prerequisite failed on the host is skipped rather than failed,
so a broken host shows its cause once: with nginx stopped, ``proxy`` fails
and the HTTP checks behind it are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from deployer.config.model import Host, Inventory
from deployer.core.hostview import HostView
from deployer.core.outcomes import CheckOutcome
from deployer.stacks import PROXIES, SERVERS, proxy_of, server_of
from deployer.core.render import HSTS, SECURITY_HEADERS, STATIC_MAX_AGE

Settings = dict[str, Any]
Probe = dict[str, Any]

MAX_EXPOSURE = 2.0
MIN_CERT_DAYS = 14
NOT_FOUND_PATH = "/deployer-verify/no-such-page"
EXPOSURE = re.compile(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)")

# In run order; a later check may depend on earlier ones.
ALL_CHECKS = (
    "app-user", "current-release", "app-service", "app-processes", "proxy", "wsgi-daemons", "listening", "env-file",
    "health", "static", "tls-cert", "https-redirect", "hsts", "headers-on-404", "unit-security",
)
DEPENDS: dict[str, tuple[str, ...]] = {
    "app-processes": ("current-release",),  # they run from it
    "wsgi-daemons": ("proxy",),  # Apache runs them
    "listening": ("proxy",),
    "static": ("proxy", "current-release"),
    "health": ("proxy",),
    "https-redirect": ("proxy",),
    "hsts": ("proxy",),
    "headers-on-404": ("proxy",),
    "tls-cert": ("proxy",),
}


def settings(inventory: Inventory, host: Host) -> Settings:
    """A host's resolved settings as plain JSON data (see ``HostView.settings``): the checks' input."""
    return HostView.of(inventory, host).settings()


def applicable(s: Settings) -> tuple[str, ...]:
    """The built-in checks that mean something for this host, in run order."""
    server_checks = {name for server in SERVERS.values() for name in server.verify_checks}
    skip = server_checks - set(SERVERS[s["server"]].verify_checks)  # e.g. no app unit under mod_wsgi
    if not s["tls"]:
        skip |= {"tls-cert", "https-redirect", "hsts"}
    if not s["app"]["static"]:
        skip.add("static")
    if not s.get("processes") and not s.get("timers"):
        skip.add("app-processes")
    return tuple(name for name in ALL_CHECKS if name not in skip)


def probe_query(s: Settings) -> dict[str, Any]:
    """What the probe program needs to know about this host."""
    scheme, port = ("https", s["https_port"]) if s["tls"] else ("http", s["http_port"])
    requests = {"health": (scheme, port, s["app"]["health"]), "not_found": (scheme, port, NOT_FOUND_PATH)}
    if s["app"]["static"]:
        requests["static"] = (scheme, port, s["app"]["static"]["url"])
    if s["tls"]:
        requests["redirect"] = ("http", s["http_port"], s["app"]["health"])
    service = next(iter(s["services"]), None)
    proxy_test = list(PROXIES[s["proxy"]].check_argv)
    layout = s["layout"]
    return {
        "user": s["app"]["user"], "current": layout["current"], "releases": layout["releases"],
        "app_files": s["app"]["app_files"], "units": s["units"] + [s["proxy_service"]] + s.get("processes", []) + s.get("timers", []),
        "process_marker": s["process_marker"], "site_link": s["site_link"], "env_file": layout["env_file"],
        "static_dir": s["app"]["static"]["dir"] if s["app"]["static"] else None,
        "server_name": s["server_name"], "requests": requests, "proxy_test": proxy_test,
        "security_unit": service,
        "tls": dict(s["tls_files"], port=s["https_port"]) if s["tls"] else None,
    }


# --- the checks: each returns None when it passes, else the reason ------------------------


def app_user(s: Settings, p: Probe) -> str | None:
    user = s["app"]["user"]
    if p["user"] is None:
        return f"user {user} does not exist"
    if user == "root" or p["user"]["uid"] == 0:
        return f"user {user} has uid 0 (root): the app must not run as root"
    return None


def current_release(s: Settings, p: Probe) -> str | None:
    cur, path = p["current"], s["layout"]["current"]
    if cur["link"] is None:
        return f"{path} is not a symlink"
    if not cur["exists"]:
        return f"{path} -> {cur['link']}, which does not exist"
    if not cur["in_releases"]:
        return f"{path} -> {cur['link']}, which is not a release under {s['layout']['releases']}"
    if not cur["has_app"]:
        return f"{path} -> {cur['link']}, which has no {' or '.join(s['app']['app_files'][:2])} (nor its venv)"
    if not cur["has_venv"]:
        return f"{path} -> {cur['link']}, whose .venv has no bin/python"
    return None


def _unit_problem(p: Probe, unit: str) -> str | None:
    state = p["units"].get(unit) or {"active": "", "enabled": "", "sub": ""}
    if state["active"] != "active":
        return f"{unit} is {state['active'] or 'not known to systemd'}" + (f" ({state['sub']})" if state["sub"] else "")
    if state["enabled"] != "enabled":
        return f"{unit} is not enabled ({state['enabled'] or 'not installed'})"
    return None


def app_service(s: Settings, p: Probe) -> str | None:
    problems = [r for r in (_unit_problem(p, u) for u in s["units"]) if r]
    if problems:
        return "; ".join(problems)
    service = s["services"][0]
    users = p["units"][service]["users"]
    if not users:
        return f"{service} has no processes"
    wrong = [u for u in users if u != s["app"]["user"]]
    if wrong:
        return f"{service} runs processes as {', '.join(wrong)} (expected only {s['app']['user']})"
    return None


def app_processes(s: Settings, p: Probe) -> str | None:
    """Each process unit active, enabled, only the app user, from the current release; each timer armed."""
    user, target = s["app"]["user"], p["current"].get("target")
    problems = []
    for unit in s.get("processes", []):
        state = p["units"].get(unit) or {}
        problem = _unit_problem(p, unit)
        wrong = sorted(set(state.get("users", [])) - {user})
        if problem:
            problems.append(problem)
        elif not state.get("users"):
            problems.append(f"{unit} has no processes")
        elif wrong:
            problems.append(f"{unit} runs processes as {', '.join(wrong)} (expected only {user})")
        elif state.get("cwd") != target:
            problems.append(f"{unit} runs from {state.get('cwd') or 'an unknown directory'}, not the current release {target}")
    problems += [r for r in (_unit_problem(p, u) for u in s.get("timers", [])) if r]
    return "; ".join(problems) or None


def wsgi_daemons(s: Settings, p: Probe) -> str | None:
    marker, user = s["process_marker"], s["app"]["user"]
    if not p["daemons"]:
        return f"no mod_wsgi daemon process {marker} is running"
    wrong = sorted(set(p["daemons"]) - {user})
    if wrong:
        return f"mod_wsgi daemons {marker} run as {', '.join(wrong)} (expected {user})"
    return None


def proxy(s: Settings, p: Probe) -> str | None:
    problem = _unit_problem(p, s["proxy_service"])
    if problem:
        return problem
    if not p["site"]["enabled"]:
        return f"site not enabled: {p['site']['link']} is missing"
    test = p["proxy_test"]
    if test["code"] != 0:
        tool = PROXIES[s["proxy"]].check_label
        return f"{tool} failed: {' | '.join(test['output'].splitlines()) or 'exit ' + str(test['code'])}"
    return None


def listening(s: Settings, p: Probe) -> str | None:
    ports = [s["http_port"]] + ([s["https_port"]] if s["tls"] else [])
    missing = [f"port {port}" for port in ports if port not in p["listening"]["tcp"]]
    if s["units"] and s["layout"]["socket"] not in p["listening"]["unix"]:
        missing.append(f"socket {s['layout']['socket']}")
    return f"nothing listens on {', '.join(missing)}" if missing else None


def env_file(s: Settings, p: Probe) -> str | None:
    path, env = s["layout"]["env_file"], p["env_file"]
    if env is None:
        return f"{path} does not exist"
    want_group = s["app"]["user"]
    problems = []
    if env["mode"] & 0o007:
        problems.append(f"mode {env['mode']:04o} is world-accessible (expected 0640)")
    if env["mode"] & 0o020:
        problems.append(f"mode {env['mode']:04o} is group-writable (expected 0640)")
    if env["owner"] != "root" or env["group"] != want_group:
        problems.append(f"owned by {env['owner']}:{env['group']} (expected root:{want_group})")
    return f"{path}: {'; '.join(problems)}" if problems else None


def _answer(p: Probe, name: str) -> tuple[dict | None, str | None]:
    answer = p["http"].get(name)
    if answer is None:
        return None, "no request was made"
    if "error" in answer:
        return None, f"no answer: {answer['error']}"
    return answer, None


def _url(s: Settings, path: str, scheme: str | None = None) -> str:
    scheme = scheme or ("https" if s["tls"] else "http")
    port = s["https_port"] if scheme == "https" else s["http_port"]
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{s['server_name']}{'' if port == default else f':{port}'}{path}"


def health(s: Settings, p: Probe) -> str | None:
    answer, error = _answer(p, "health")
    url = _url(s, s["app"]["health"])
    if error:
        return f"GET {url}: {error}"
    if not 200 <= answer["status"] < 300:
        return f"GET {url} answered {answer['status']} (expected 2xx)"
    return None


def static(s: Settings, p: Probe) -> str | None:
    static_cfg = s["app"]["static"]
    if p["static_file"] is None:
        return f"the current release has no file under {static_cfg['dir']}/ to request"
    answer, error = _answer(p, "static")
    url = _url(s, f"{static_cfg['url']}/{p['static_file']}")
    if error:
        return f"GET {url}: {error}"
    if answer["status"] != 200:
        return f"GET {url} answered {answer['status']} (expected 200)"
    if f"max-age={STATIC_MAX_AGE}" not in answer["headers"].get("cache-control", ""):
        return f"GET {url} lacks the proxy's Cache-Control max-age={STATIC_MAX_AGE}: not served by {s['proxy']}"
    return None


def tls_cert(s: Settings, p: Probe) -> str | None:
    tls = p["tls"]
    if tls["key_error"]:
        return f"certificate and key do not match: {tls['key_error']}"
    if tls["verify_error"]:
        return f"port {s['https_port']}: {tls['verify_error']}"
    if not tls["same_cert"]:
        return f"port {s['https_port']} serves another certificate than {s['tls_files']['cert']}"
    names = tls["peer"]["names"]
    unmatched = [n for n in s["server_names"] if not any(_name_matches(n, pattern) for pattern in names)]
    if unmatched:
        return f"certificate is not valid for {', '.join(unmatched)} (it names {', '.join(names) or 'no DNS name'})"
    days = (tls["peer"]["not_after"] - p["now"]) / 86400
    if days <= MIN_CERT_DAYS:
        return f"certificate expires in {days:.0f} days (needs more than {MIN_CERT_DAYS})"
    return None


def _name_matches(name: str, pattern: str) -> bool:
    """RFC 6125: a wildcard stands for exactly one leftmost label."""
    name, pattern = name.lower(), pattern.lower()
    if pattern.startswith("*."):
        return "." in name and name.split(".", 1)[1] == pattern[2:]
    return name == pattern


def https_redirect(s: Settings, p: Probe) -> str | None:
    answer, error = _answer(p, "redirect")
    url = _url(s, s["app"]["health"], "http")
    if error:
        return f"GET {url}: {error}"
    location = answer["headers"].get("location", "")
    want = _url(s, s["app"]["health"], "https")
    if answer["status"] != 308:
        return f"GET {url} answered {answer['status']} (expected 308 to {want})"
    if location != want:
        return f"GET {url} redirects to {location or 'nowhere'} (expected {want})"
    return None


def hsts(s: Settings, p: Probe) -> str | None:
    answer, error = _answer(p, "health")
    url = _url(s, s["app"]["health"])
    if error:
        return f"GET {url}: {error}"
    value = answer["headers"].get("strict-transport-security")
    if not value:
        return f"GET {url} has no Strict-Transport-Security header"
    if "max-age=" not in value or value.split("max-age=")[1].split(";")[0].strip() in ("", "0"):
        return f"Strict-Transport-Security is {value!r} (expected {HSTS!r})"
    return None


def headers_on_404(s: Settings, p: Probe) -> str | None:
    answer, error = _answer(p, "not_found")
    url = _url(s, NOT_FOUND_PATH)
    if error:
        return f"GET {url}: {error}"
    if answer["status"] != 404:
        return f"GET {url} answered {answer['status']} (expected 404)"
    wanted = list(SECURITY_HEADERS) + ([("Strict-Transport-Security", HSTS)] if s["tls"] else [])
    missing = [name for name, _ in wanted if name.lower() not in answer["headers"]]
    return f"the 404 of {url} lacks {', '.join(missing)}" if missing else None


def unit_security(s: Settings, p: Probe) -> str | None:
    service = s["services"][0]
    result = p["security"]
    match = EXPOSURE.search(result["output"])
    if not match:
        last = (result["output"].strip().splitlines() or ["no output"])[-1]
        return f"systemd-analyze security {service} gave no exposure level: {last}"
    exposure = float(match.group(1))
    if exposure >= MAX_EXPOSURE:
        return f"systemd-analyze security rates {service} {exposure} (must be below {MAX_EXPOSURE})"
    return None


JUDGES: dict[str, Callable[[Settings, Probe], str | None]] = {
    "app-user": app_user, "current-release": current_release, "app-service": app_service,
    "app-processes": app_processes,
    "wsgi-daemons": wsgi_daemons, "proxy": proxy, "listening": listening, "env-file": env_file,
    "health": health, "static": static, "tls-cert": tls_cert, "https-redirect": https_redirect,
    "hsts": hsts, "headers-on-404": headers_on_404, "unit-security": unit_security,
}


def judge(name: str, s: Settings, p: Probe) -> str | None:
    return JUDGES[name](s, p)


def verdict(name: str, s: Settings, p: Probe, outcomes: dict[str, str]) -> tuple[CheckOutcome, str]:
    """(outcome, reason) of one check, given the outcomes so far on the host."""
    blocked = blocked_by(name, outcomes)
    if blocked:
        return CheckOutcome.SKIPPED, f"not checked: {', '.join(blocked)} failed"
    reason = judge(name, s, p) or ""
    return (CheckOutcome.FAILED if reason else CheckOutcome.PASSED), reason


def judge_all(s: Settings, p: Probe, names: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """Each check in order as (name, outcome, reason): the pytest suite's run, for a caller with no pytest."""
    outcomes: dict[str, str] = {}
    results = []
    for name in names:
        outcomes[name], reason = verdict(name, s, p, outcomes)
        results.append((name, outcomes[name], reason))
    return results


def blocked_by(name: str, outcomes: dict[str, str]) -> tuple[str, ...]:
    """Prerequisites of ``name`` that failed on this host (those not run do not block)."""
    return tuple(dep for dep in DEPENDS.get(name, ()) if outcomes.get(dep) == CheckOutcome.FAILED)

