"""secret_env: checked before any host is touched, never taken from group_data, masked in every output."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from opsrun import notify
from opsrun import settings as schemas
from opsrun.cli import cli
from opsrun.errors import ConfigError
from opsrun.model import secret_sources, secrets
from opsrun.model.inventory import Host, Inventory
from opsrun.settings.models import Pm2App
from opsrun.settings.values import SecretsManagerSecret
from opsrun.store import open_store

REPO = Path(__file__).resolve().parents[2]

GROUP_DATA = Path("/ops/group_data/web.py")


def inventory(apps: list[dict]) -> Inventory:
    hosts = {h: Host(h, ("web",), {"pm2_apps": apps}) for h in ("web1", "web2")}
    return Inventory(
        "prod", Path("/ops/inventories/prod.py"), list(hosts), {}, {"web": (list(hosts), {})}, hosts,
        {"web": {"pm2_apps": GROUP_DATA}},
    )  # fmt: skip


def test_values_come_from_the_environment_and_are_masked_afterwards():
    inv = inventory([{"name": "demo", "env": {"PORT": 3001}, "secret_env": {"API_TOKEN": "DEMO_TOKEN"}}])
    found = secrets.require(inv, ["web1", "web2"], ["pm2"], environ={"DEMO_TOKEN": "hunter2-very-secret"})
    assert found == {"DEMO_TOKEN": "hunter2-very-secret"}
    assert secrets.redact('{"cmd": "echo hunter2-very-secret"}') == '{"cmd": "echo ***"}'


def test_a_missing_variable_names_file_field_and_fix():
    inv = inventory([{"name": "demo", "secret_env": {"API_TOKEN": "DEMO_TOKEN"}}])
    with pytest.raises(ConfigError) as err:
        secrets.require(inv, ["web1"], ["pm2"], environ={})
    assert err.value.path == str(GROUP_DATA)
    assert err.value.field == "pm2_apps[0].secret_env.API_TOKEN"
    assert "the environment variable DEMO_TOKEN (for API_TOKEN) is not set; nothing was touched." == err.value.problem
    assert "export DEMO_TOKEN=" in (err.value.fix or "")


@pytest.mark.parametrize(
    ("app", "field"),
    [
        ({"name": "demo", "env": {"DB_PASSWORD": "plain"}}, "pm2_apps[0].env.DB_PASSWORD"),
        ({"name": "demo", "secret_env": {"API_TOKEN": "s3cr3t value!"}}, "pm2_apps[0].secret_env.API_TOKEN"),
    ],
)
def test_a_secret_written_in_group_data_is_refused(app, field):
    with pytest.raises(ConfigError) as err:
        secrets.require(inventory([app]), ["web1"], ["pm2"], environ={})
    assert err.value.field == field


def test_only_the_settings_of_the_deploy_that_runs_are_required():
    inv = inventory([{"name": "demo", "secret_env": {"API_TOKEN": "DEMO_TOKEN"}}])
    assert secrets.require(inv, ["web1"], ["nginx"], environ={}) == {}


def test_secret_looking_environment_variables_are_masked(monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "pg-pass-123")
    assert secrets.redact("postgresql://ops:pg-pass-123@db/ops") == "postgresql://ops:***@db/ops"


# ------------------------------------------------------------------------------------------- URLs

URL_SECRETS = [
    ("postgresql://ops:pw-in-url-1@db:5432/ops", ["pw-in-url-1"], "postgresql://ops:***@db:5432/ops"),
    ("postgresql://db/ops?password=pw-in-query-2&sslmode=require", ["pw-in-query-2"], None),
    ("mysql://tokenasuser@db/x", ["tokenasuser"], "mysql://***@db/x"),
    ("https://hooks.slack.com/services/T0AAAA/B0BBBB/slackSecret3", ["T0AAAA", "B0BBBB", "slackSecret3"], None),
    ("https://discord.com/api/webhooks/12345678/discordSecret4", ["12345678", "discordSecret4"], None),
    ("https://contoso.webhook.office.com/webhookb2/a@c/IncomingWebhook/dd/teamsSecret5", ["teamsSecret5"], None),
    ("https://prod-1.westus.logic.azure.com/workflows/wf/triggers/manual/invoke?sig=azureSig6", ["azureSig6"], None),
    ("https://chat.example.org/hooks/mattermostSecret7", ["mattermostSecret7"], "https://chat.example.org/hooks/***"),
    ("https://api.telegram.org/bot12345:telegramSecret8/sendMessage", ["telegramSecret8"], None),
]  # fmt: skip


@pytest.mark.parametrize(("url", "hidden", "shown"), URL_SECRETS, ids=[u[0].split("/")[2] for u in URL_SECRETS])
def test_urls_lose_userinfo_query_values_and_webhook_paths(url, hidden, shown):
    for text in (f"error: cannot reach {url} (timed out)", json.dumps({"target": f"webhook:{url}"})):
        masked = secrets.redact(text)
        assert not [h for h in hidden if h in masked], masked
    if shown is not None:
        assert secrets.redact(url) == shown


def test_a_registered_webhook_path_does_not_spoil_the_masking_of_other_urls():
    """A `--notify webhook:http://127.0.0.1:9/hook` registers "/hook" as a secret; replacing it first turned
    https://hooks.slack.com/... into https:/***s.slack.com/... which the URL masking then no longer knew,
    and the Slack key was shown."""
    secrets.register_url("http://127.0.0.1:9/hook", path_is_secret=True)
    masked = secrets.redact("error: cannot reach https://hooks.slack.com/services/T0/B0/slackSecret13 (timed out)")
    assert "slackSecret13" not in masked, masked
    assert secrets.redact("POST to /hook failed") == "POST to *** failed"


@pytest.mark.parametrize(
    "url", ["http://{address}:3001/health", "https://deb.debian.org/debian bookworm main", "s3://bucket/pg/x.dump"]
)
def test_urls_without_secrets_are_left_as_they_are(url):
    assert secrets.redact(f"see {url}.") == f"see {url}."


def test_a_webhook_target_given_to_notify_is_secret_in_full(monkeypatch):
    """Any `--notify webhook:URL`: the path is the secret, whatever the host."""
    [target] = notify.parse(["webhook:http://127.0.0.1:9/T0/B0/hookSecretPath9"])
    assert "hookSecretPath9" not in str(target)
    assert "hookSecretPath9" not in secrets.redact("POST to /T0/B0/hookSecretPath9 failed")
    sent = notify.send([target], {"kind": "drift", "inventory": "lab", "status": "drift"}, None, retry=notify.Retry(1))
    assert sent.errors and not [e for e in sent.errors if "hookSecretPath9" in e], sent.errors


def test_a_bad_notify_target_is_refused_without_showing_it():
    result = CliRunner().invoke(
        cli,
        ["--project", str(REPO), "drift", "lab", "--notify", "webhook:ftp://hooks.slack.com/services/T/B/ftpSecret10"],
    )
    assert result.exit_code == 2, (result.output, result.exception)
    assert "--notify" in result.stderr and "ftpSecret10" not in result.output + result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:stateSecret11@127.0.0.1:1/db?connect_timeout=1",
        "postgresql://127.0.0.1:1/db?password=stateSecret11&connect_timeout=1",
        "mysql://u:stateSecret11@h/db?password=stateSecret11",
        "sqlite:///x?password=stateSecret11",
    ],
)
def test_the_state_url_password_is_never_shown(url):
    result = CliRunner().invoke(cli, ["--project", str(REPO), "--state", url, "history"])
    assert result.exit_code == 2, (result.output, result.exception)
    assert "stateSecret11" not in result.output + result.stderr


def test_the_state_store_keeps_no_url_secret(tmp_path):
    """runs.document, run_hosts.reason and findings, as written by the store: URLs masked on the way in."""
    slack = "https://hooks.slack.com/services/T0/B0/storeSecret12"
    store = open_store(tmp_path)
    try:
        run_id = store.start_run("drift", "lab", "pm2", revision=None)
        store.finish_run(
            run_id,
            {
                "status": "drift",
                "notify_errors": [f"notify webhook:{slack}: URLError: refused"],
                "hosts": {"web1": {"outcome": "failed", "reason": "postgresql://u:storeSecret12@db/x down"}},
            },
        )
        finding = SimpleNamespace(
            host="web1", deploy="pm2", operation=f"call {slack}", fingerprint="f", verdict="drift",
            detail={"command": f"curl {slack}"}, cause=None,
        )  # fmt: skip
        store.track_findings("lab", [finding], checked=set(), cause=lambda _d: None)
    finally:
        store.close()
    raw = (tmp_path / "state.db").read_bytes()
    with sqlite3.connect(tmp_path / "state.db") as conn:
        rows = [str(r) for t in ("runs", "run_hosts", "findings") for r in conn.execute(f"SELECT * FROM {t}")]
    assert rows and not [r for r in rows if "storeSecret12" in r]
    assert b"storeSecret12" not in raw


# ------------------------------------------------------------------------------------- env names


@pytest.mark.parametrize(
    "var", ["DB_PASS", "SECRET_VALUE", "API_TOKENS", "AUTH", "STRIPE_KEYS", "SMTP_CREDENTIALS", "jwt_secret", "DB_PWD"]
)
def test_a_secret_looking_env_name_is_refused(var):
    """On main only names ending in PASSWORD/SECRET/TOKEN/_KEY/... were: DB_PASS, API_TOKENS, AUTH passed."""
    with pytest.raises(ConfigError) as err:
        secrets.require(inventory([{"name": "demo", "env": {var: "plain"}}]), ["web1"], ["pm2"], environ={})
    assert err.value.field == f"pm2_apps[0].env.{var}"
    assert "not_secret" in (err.value.fix or "") and "secret_env" in (err.value.fix or "")


def test_a_url_with_a_password_in_env_is_refused_whatever_its_name():
    app = {"name": "demo", "env": {"DATABASE_URL": "postgresql://app:pw@db/app"}, "not_secret": ["DATABASE_URL"]}
    with pytest.raises(ConfigError) as err:
        secrets.require(inventory([app]), ["web1"], ["pm2"], environ={})
    assert err.value.field == "pm2_apps[0].env.DATABASE_URL" and "password" in err.value.problem


def test_not_secret_lets_a_plain_value_through():
    app = {"name": "demo", "env": {"AUTH_MODE": "oidc", "PORT": 3001}, "not_secret": ["AUTH_MODE"]}
    assert secrets.require(inventory([app]), ["web1"], ["pm2"], environ={}) == {}
    Pm2App.model_validate({**app, "source": "apps/demo", "script": "server.js", "cwd": "/opt/apps/demo"})


@pytest.mark.parametrize(
    ("not_secret", "problem"),
    [(["NOSUCH"], "NOSUCH is not a variable of env"), (["API_TOKEN"], "API_TOKEN is in secret_env")],
)
def test_not_secret_must_name_a_plain_env_variable(not_secret, problem):
    app = {
        "name": "demo", "source": "apps/demo", "script": "s.js", "cwd": "/opt/d",
        "env": {"AUTH_MODE": "oidc"}, "secret_env": {"API_TOKEN": "X"}, "not_secret": not_secret,
    }  # fmt: skip
    with pytest.raises(ValidationError) as err:
        Pm2App.model_validate(app)
    [error] = err.value.errors()
    assert error["loc"] == ("not_secret",) and problem in error["msg"]


def test_a_plain_pyinfra_run_refuses_a_plain_text_secret_too():
    """settings.for_host (what the deploys call) applies the same rule, with the same field path."""
    data = {"pm2_apps": [{"name": "demo", "source": "a", "script": "s.js", "cwd": "/o", "env": {"DB_PASS": "x"}}]}
    host = SimpleNamespace(name="web1", data=data, groups=["web"])
    with pytest.raises(ConfigError) as err:
        schemas.for_host(host, "pm2")
    assert err.value.field == "pm2_apps[0].env.DB_PASS"


ARN_TAIL = "secretsmanager:eu-west-1:1:secret:x-AbC"


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("DEMO_TOKEN", "DEMO_TOKEN"),
        ({"env": "DEMO_TOKEN"}, "DEMO_TOKEN"),
        ({"secretsmanager": "prod/app", "key": "password"}, "secretsmanager:prod/app key password"),
        ({"secretsmanager": "arn:aws:secretsmanager:eu-west-1:1:secret:x-AbC"}, "secretsmanager:arn:aws:" + ARN_TAIL),
        ({"ssm": "/prod/redis/password"}, "ssm:/prod/redis/password"),
    ],
)  # fmt: skip
def test_the_three_sources_and_the_plain_name(raw, label):
    assert secret_sources.label(secret_sources.parse(raw, "group_data/web.py", "secret_env.X")) == label


@pytest.mark.parametrize(
    "raw",
    [{"vault": "x"}, {"env": "A", "ssm": "/b"}, {"secretsmanager": "p", "key": ""}, {"ssm": "bad name"}, 42],
)
def test_a_reference_of_no_known_form_names_the_forms(raw):
    with pytest.raises(ConfigError) as err:
        secret_sources.parse(raw, "group_data/web.py", "pm2_apps[0].secret_env.X")
    assert err.value.field == "pm2_apps[0].secret_env.X"
    assert '{"ssm": "/PARAMETER/NAME"}' in (err.value.fix or "")


def test_a_value_handed_over_by_the_controller_is_used_without_asking_again(monkeypatch):
    monkeypatch.delenv("NOT_SET_HERE", raising=False)
    secret_sources.preload({"NOT_SET_HERE": "handed-over-value", "ssm:/prod/x": "from-the-controller"})
    try:
        assert secret_sources.read("NOT_SET_HERE") == "handed-over-value"
        assert secret_sources.read({"ssm": "/prod/x"}) == "from-the-controller"
        assert secrets.redact("x from-the-controller") == "x ***"
    finally:
        secret_sources.forget()


def test_group_data_takes_an_aws_reference_where_it_took_a_variable_name():
    app = {
        "name": "demo", "source": "apps/demo", "script": "server.js", "cwd": "/opt/apps/demo",
        "secret_env": {"API_TOKEN": {"secretsmanager": "prod/app", "key": "token"}},
    }  # fmt: skip
    assert Pm2App.model_validate(app).secret_env["API_TOKEN"] == SecretsManagerSecret(
        secretsmanager="prod/app", key="token"
    )


def test_the_worker_is_handed_the_values_the_controller_read_and_never_shows_them(monkeypatch, tmp_path):
    from opsrun import engine

    asked = []
    monkeypatch.setattr(engine, "_run_worker", lambda request, **_kw: asked.append(request))
    project = SimpleNamespace(
        root=tmp_path, state_dir=tmp_path / ".opsrun", deploy_path=lambda d: tmp_path / "deploys" / f"{d}.py"
    )
    secret_sources.preload({"ssm:/prod/x": "handed-over-value"})
    try:
        engine.run_deploy(project, inventory([]), "pm2", ["web1"], dry_run=True)
    finally:
        secret_sources.forget()
    [request] = asked
    assert request.secrets == {"ssm:/prod/x": "handed-over-value"}
    assert "handed-over-value" not in repr(request)
