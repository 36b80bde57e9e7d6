"""The nginx balancer's configuration edits (pure text in, text out)."""

import pytest

from opsrun.balancers.nginx import parse_upstream, set_down
from opsrun.errors import BalancerError

CONF = """# managed
upstream app {
    least_conn;
    server 10.0.0.11:3001;
    server 10.0.0.12:3001 max_fails=2 fail_timeout=5s;  # second
    server 10.0.0.13:3001 down;
    keepalive 16;
}

upstream other {
    server 10.0.0.11:9000;
}

server {
    listen 8081;
    location / { proxy_pass http://app; }
}
"""


def test_parse_upstream_lists_servers_with_their_parameters():
    assert parse_upstream(CONF, "app") == {
        "10.0.0.11:3001": [],
        "10.0.0.12:3001": ["max_fails=2", "fail_timeout=5s"],
        "10.0.0.13:3001": ["down"],
    }
    assert parse_upstream(CONF, "other") == {"10.0.0.11:9000": []}


def test_set_down_changes_only_that_server_line():
    new = set_down(CONF, "app", "10.0.0.12:3001", True)
    assert "    server 10.0.0.12:3001 max_fails=2 fail_timeout=5s down;  # second\n" in new
    assert [a for a, b in zip(CONF.splitlines(), new.splitlines(), strict=True) if a != b] == [
        "    server 10.0.0.12:3001 max_fails=2 fail_timeout=5s;  # second"
    ]
    assert set_down(new, "app", "10.0.0.12:3001", False) == CONF
    assert "server 10.0.0.11:9000;" in set_down(CONF, "app", "10.0.0.11:3001", True)  # the other upstream kept


def test_set_down_twice_is_idempotent():
    once = set_down(CONF, "app", "10.0.0.11:3001", True)
    assert set_down(once, "app", "10.0.0.11:3001", True) == once
    assert set_down(CONF, "app", "10.0.0.13:3001", True) == CONF


@pytest.mark.parametrize(
    ("upstream", "server", "message"),
    [("nosuch", "10.0.0.11:3001", "no `upstream nosuch {` block"), ("app", "10.0.0.99:3001", "no server 10.0.0.99")],
)
def test_unknown_upstream_or_server(upstream, server, message):
    with pytest.raises(BalancerError, match=message):
        set_down(CONF, upstream, server, True)
