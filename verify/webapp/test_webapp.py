"""What "done" means for deploys/webapp.py: the app is running and enabled, and /health answers with the
configured version."""

import json


def test_service_is_running_and_enabled(host):
    svc = host.service("opsrun-app")
    assert svc.is_running
    assert svc.is_enabled


def test_health_answers_with_configured_version(host, host_data):
    port = host_data.get("webapp_port", 3001)
    out = host.check_output("curl -sS --max-time 5 http://127.0.0.1:%s/health", str(port))
    health = json.loads(out)
    assert health["status"] == "ok"
    assert health["version"] == str(host_data.get("webapp_version", "1"))
