"""``deployer plan`` never shows a secret file's content, old or new (issue 11, finding 1).

Masking the app's current secret values is not enough: a TLS key's lines are not
one value, and the env file read back from the host holds the *old* values.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.core.facts import LiveFile
from deployer.core.plan import Target, plan_host
from deployer.core.render import TlsMaterial, render_host
from deployer.errors import DeployerError
from deployer.remote.ssh import CommandResult
from deployer.run.apply import gather_facts
from deployer.secret import Secret
from tests import factories as f
from tests.unit.test_plan import converged, facts

TARGET = Target("20261125T170000Z-aaaaaaaaaaaa", "aaaaaaaaaaaa", "req1", "3.11")
KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
TLS = TlsMaterial(cert="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                  key=Secret(f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----\n"))


def diffs(plan, inv) -> str:  # noqa: ANN001
    return "".join(c.diff(tuple(inv.app.secrets.values())) for c in plan.changes)


def test_changed_env_file_shows_neither_old_nor_new_values() -> None:
    host = f.host()
    inv = f.inventory(host)
    live = converged(inv, host)
    live.files["/etc/hello/env"] = LiveFile("x", 0o640, "APP_SECRET_KEY=\"old-rotated-value\"\n")
    plan = plan_host(inv, host, TARGET, render_host(inv, host, reveal_secrets=True), live)
    text = diffs(plan, inv)
    new = next(x for x in render_host(inv, host, reveal_secrets=True) if str(x.path) == "/etc/hello/env")
    assert "old-rotated-value" not in text and "s3cr3t-Key_value" not in text
    assert text == f"/etc/hello/env: changed (secret, {len(new.content.encode())} bytes)\n"


def test_first_deploy_and_key_rotation_show_no_key_line() -> None:
    host = f.host(tls=True)
    inv = f.inventory(host)
    files = render_host(inv, host, reveal_secrets=True, tls=TLS)
    text = diffs(plan_host(inv, host, TARGET, files, facts()), inv)
    assert KEY_BODY not in text and "PRIVATE KEY" not in text
    assert f"/etc/hello/tls/key.pem: new (secret, {len(TLS.key.reveal())} bytes)\n" in text
    assert "/etc/hello/env: new (secret, " in text
    assert "+-----BEGIN CERTIFICATE-----" in text  # the certificate is public: a real diff

    live = converged(inv, host)
    live.files.update({str(x.path): LiveFile("x", x.mode, x.content) for x in files})
    live.files["/etc/hello/tls/key.pem"] = LiveFile("x", 0o600, "-----BEGIN PRIVATE KEY-----\nOLDKEYBODY\n")
    text = diffs(plan_host(inv, host, TARGET, files, live), inv)
    assert "OLDKEYBODY" not in text and KEY_BODY not in text and "key.pem: changed (secret, " in text


def test_a_file_rendered_with_a_secret_is_secret(tmp_path: Path) -> None:
    site = tmp_path / "nginx" / "site.conf.j2"
    site.parent.mkdir()
    site.write_text("{% for k, v in env_pairs %}# {{ k }} {{ v }}\n{% endfor %}")
    host = f.host()
    inv = f.inventory(host, templates_dir=tmp_path)
    files = {str(x.path): x for x in render_host(inv, host, reveal_secrets=True)}
    assert files["/etc/nginx/sites-available/hello.conf"].secret
    assert not files["/etc/systemd/system/hello.service"].secret
    live = converged(inv, host)
    live.files["/etc/nginx/sites-available/hello.conf"] = LiveFile("x", 0o644, "# APP_SECRET_KEY old-one\n")
    text = diffs(plan_host(inv, host, TARGET, tuple(files.values()), live), inv)
    assert "old-one" not in text and "hello.conf: changed (secret, " in text
    masked = {str(x.path): x for x in render_host(inv, host, reveal_secrets=False)}
    assert not masked["/etc/nginx/sites-available/hello.conf"].secret  # *** is no secret


class FactsRemote:
    def __init__(self, result: CommandResult) -> None:
        self.host, self.result = f.host(), result

    def run(self, argv, *, check=True, timeout=None, mask=True):  # noqa: ANN001
        return self.result


LIVE_ENV = '{"files": {"/etc/hello/env": {"content": "APP_SECRET_KEY=old-rotated-value"}}}'


@pytest.mark.parametrize("result", [CommandResult(1, LIVE_ENV, ""), CommandResult(0, LIVE_ENV, ""),
                                    CommandResult(0, LIVE_ENV[:-5], ""), CommandResult(1, LIVE_ENV, "\n")],
                         ids=["failed", "incomplete", "truncated", "blank-stderr"])
def test_facts_errors_never_echo_the_output(result: CommandResult) -> None:
    with pytest.raises(DeployerError) as caught:
        gather_facts(FactsRemote(result), f.inventory(), ())
    assert "old-rotated-value" not in str(caught.value) and "cannot read host state" in str(caught.value)


def test_facts_failure_says_exit_code_and_last_stderr_line() -> None:
    from deployer.core.facts import facts_failure

    assert facts_failure(1, "Traceback ...\nPermissionError: [Errno 13] /srv\n\n") == "exit 1: PermissionError: [Errno 13] /srv"
    assert facts_failure(255, "") == "exit 255"
