"""What "done" means for deploys/nginx.py: installed, running and enabled, a valid configuration,
listening on the configured port, its own health page answering, and / proxied to its upstream (whatever
the upstream says, nginx passes on; an upstream that is not deployed yet is a 502, not an nginx fault)."""

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


def _status(host, url):
    return host.run("curl -s -o /dev/null -w '%%{http_code}' --max-time 5 %s", url).stdout.strip()


def test_own_health_page_answers(host, host_data):
    port = host_data.get("nginx_listen_port", 80)
    got = _status(host, f"http://127.0.0.1:{port}/nginx-health")
    assert got == "200", f"GET /nginx-health answered {got!r}"


def test_site_is_proxied_to_its_upstream(host, host_data):
    port = host_data.get("nginx_listen_port", 80)
    upstreams = host_data.get("nginx_upstream_servers") or []
    if not upstreams:
        pytest.skip("no upstream configured: nginx serves nothing behind /")
    direct = {_status(host, f"http://{u}/") for u in upstreams}
    got = _status(host, f"http://127.0.0.1:{port}/")
    if direct == {"000"}:  # no upstream answers: nginx must say so, not serve something else
        assert got == "502", f"GET / answered {got!r} although no upstream ({', '.join(upstreams)}) answers"
    else:
        assert got in direct, f"GET / answered {got!r}; the upstreams answer {sorted(direct)}"
