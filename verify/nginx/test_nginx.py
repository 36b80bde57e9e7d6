"""What "done" means for deploys/nginx.py: installed, running and enabled, a valid configuration,
listening on the configured port, and the site answering."""

import pytest


def test_package_is_installed(host):
    assert host.package("nginx").is_installed


def test_service_is_running_and_enabled(host):
    svc = host.service("nginx")
    assert svc.is_running
    assert svc.is_enabled


def test_configuration_is_valid(host):
    host.run_expect([0], "nginx -t -q")


def test_listens_on_configured_port(host, host_data):
    port = host_data.get("nginx_listen_port", 80)
    assert host.socket(f"tcp://0.0.0.0:{port}").is_listening


def test_distribution_default_site_is_disabled(host):
    assert not host.file("/etc/nginx/sites-enabled/default").exists


@pytest.mark.parametrize("path", ["/", "/nginx-health"])
def test_site_answers(host, host_data, path):
    port = host_data.get("nginx_listen_port", 80)
    out = host.run("curl -s -o /dev/null -w '%%{http_code}' --max-time 5 http://127.0.0.1:%s%s", str(port), path)
    assert out.stdout.strip() == "200", f"GET {path} answered {out.stdout.strip()!r}: {out.stderr}"
