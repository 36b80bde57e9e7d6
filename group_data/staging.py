"""Staging (inventories/staging.py: the EC2 instances tagged Env=staging): as production, its own ALB."""

import os as _os

ssh_user = "admin"
_sudo = True  # pyinfra's escalation, for every command opsrun runs on the hosts
ssh_key = _os.path.expanduser("~/.ssh/staging_ed25519")  # an absolute path (the schema asks)
ssh_known_hosts_file = _os.path.expanduser("~/.ssh/known_hosts_staging")
ssh_strict_host_key_checking = "yes"

balancer = {"type": "elbv2", "target_group": "staging-web"}

patching_rolling = {
    "serial": 1,
    "max_fail": 0,
    "waves": "patch_",
    "drain_timeout": 330,
    "healthy_timeout": 300,
    "health": {"http": "http://{address}:3001/health", "status": 200, "timeout": 60},
    "verify": True,
    "reboot": "if-needed",
}

aws_checks = {
    "target_groups": ["staging-web"],
    "tls": {"endpoints": [], "warn_days": 30, "fail_days": 14},
}
