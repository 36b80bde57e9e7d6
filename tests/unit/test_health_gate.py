"""The real health gate (opsrun.hosts.health.HealthCheck) against real servers on loopback, read from its validated
setting (settings.models.HealthGate): the status it expects, its deadline and its pause between probes."""

import http.server
import socket
import threading

import pytest

from opsrun.errors import WaitTimeout
from opsrun.hosts.health import HealthCheck
from opsrun.settings.models import HealthGate


class Answers(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(204 if self.path == "/health" else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def port():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_an_http_gate_passes_on_the_status_its_setting_expects(port):
    gate = HealthCheck(HealthGate(http=f"http://{{address}}:{port}/health", status=204))
    assert gate.probe("web1", "127.0.0.1") == (True, "HTTP 204")
    assert gate.wait("web1", "127.0.0.1") == "HTTP 204"
    assert str(gate) == f"http://{{address}}:{port}/health"  # as the rollout's document shows it


def test_an_http_gate_that_never_passes_times_out_at_its_settings_deadline_naming_what_it_saw(port):
    gate = HealthCheck(HealthGate(http=f"http://{{host}}:{port}/down", timeout=0.3, interval=0.05))
    assert gate.probe("localhost", "127.0.0.1") == (False, "HTTP 503")
    with pytest.raises(WaitTimeout) as timeout:
        gate.wait("localhost", "127.0.0.1")
    assert timeout.value.timeout == 0.3
    assert f"health gate http://localhost:{port}/down to answer 200" in str(timeout.value)
    assert "HTTP 503" in str(timeout.value)


def test_a_tcp_gate_passes_when_its_port_accepts():
    with socket.create_server(("127.0.0.1", 0)) as listening:
        gate = HealthCheck(HealthGate(tcp=listening.getsockname()[1]))
        assert gate.probe("web1", "127.0.0.1") == (True, "port open")
        assert str(gate) == f"tcp:{listening.getsockname()[1]}"
