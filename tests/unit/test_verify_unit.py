from pathlib import Path

import pytest

from opsrun.errors import ConfigError
from opsrun.inventory import Host, Inventory
from opsrun.verify import _strip_host, public_data, ssh_config


def inv(**data):
    hosts = {"web1": Host("web1", ("web",), {"ssh_hostname": "10.0.0.1", **data})}
    return Inventory("lab", Path("/x/inventories/lab.py"), ["web1"], {}, {"web": (["web1"], {})}, hosts)


def test_ssh_config_carries_inventory_ssh_settings_and_strict_keys():
    text = ssh_config(
        inv(
            ssh_user="root",
            ssh_port=2222,
            ssh_key="/k/id",
            ssh_known_hosts_file="/k/kh",
            ssh_strict_host_key_checking="yes",
        ),
        ["web1"],
        Path("/tmp/cm"),
    )
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == "Host web1"
    for expected in (
        "HostName 10.0.0.1",
        "Port 2222",
        "User root",
        "IdentityFile /k/id",
        "IdentitiesOnly yes",
        "UserKnownHostsFile /k/kh",
        "StrictHostKeyChecking yes",
        "BatchMode yes",
        "ControlPath /tmp/cm/%C",
    ):
        assert expected in lines


def test_ssh_config_prefers_the_key_exchange_of_pyinfras_own_connection():
    """curve25519 first (paramiko, which pyinfra applies with, has nothing stronger), the rest of OpenSSH's
    defaults after it: the post-quantum hybrid that OpenSSH would pick costs 0.08 s of CPU a connection here."""
    lines = [line.strip() for line in ssh_config(inv(), ["web1"], Path("/tmp/cm")).splitlines()]
    assert "KexAlgorithms ^curve25519-sha256,curve25519-sha256@libssh.org" in lines


def test_pyinfra_default_accept_new_is_kept():
    assert "StrictHostKeyChecking accept-new" in ssh_config(inv(), ["web1"], Path("/tmp/cm"))


def test_unknown_strict_value_is_a_config_error():
    with pytest.raises(ConfigError) as err:
        ssh_config(inv(ssh_strict_host_key_checking="maybe"), ["web1"], Path("/tmp/cm"))
    assert err.value.field == "ssh_strict_host_key_checking"


def test_public_data_drops_secrets_and_non_json():
    data = {
        "nginx_listen_port": 80,
        "redis_password": "s3cret",
        "api_token": "t",
        "ssh_key_password": "p",
        "aws_secret_access_key": "k",
        "callback": print,
    }
    assert public_data(data) == {"nginx_listen_port": 80}


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        ("test_nginx.py::test_a[opsrun-ssh://web1]", "test_nginx.py::test_a"),
        ("test_nginx.py::test_a[opsrun-ssh://web1-/health]", "test_nginx.py::test_a[/health]"),
        ("test_nginx.py::test_a[/health-opsrun-ssh://web1]", "test_nginx.py::test_a[/health]"),
    ],
)
def test_host_is_removed_from_test_ids(test, expected):
    assert _strip_host(test, "web1") == expected


def test_the_suite_is_told_which_deploy_was_just_applied(tmp_path):
    from opsrun.verify import AFTER_APPLY_ENV, _pytest_env

    lab = inv()
    assert _pytest_env(tmp_path, lab, ["web1"], {"web1": 60}, 4, after_apply="patching")[AFTER_APPLY_ENV] == "patching"
    assert AFTER_APPLY_ENV not in _pytest_env(tmp_path, lab, ["web1"], {"web1": 60}, 4)
