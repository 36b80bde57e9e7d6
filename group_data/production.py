"""Production (inventories/production.py: the EC2 instances tagged Env=production).

How opsrun reaches the hosts (strict host key checking, as everywhere), the web tier's ALB target group
(found by name: no ARN here; a target is the host's instance id), patching wave by wave, and the
cloud-side checks of `opsrun verify production aws`.
"""

import os as _os

ssh_user = "admin"  # Debian's AMIs; "ubuntu" on Ubuntu's
_sudo = True  # pyinfra's escalation, for every command opsrun runs on the hosts (root logins are refused)
ssh_key = _os.path.expanduser("~/.ssh/production_ed25519")  # an absolute path (the schema asks)
ssh_known_hosts_file = _os.path.expanduser("~/.ssh/known_hosts_production")  # e.g. from EC2 Instance Connect or your CA
ssh_strict_host_key_checking = "yes"  # the bastion's key too: it is checked against the same file
# ssh_jump = "admin@bastion.example.com"  # the hosts are in private subnets: every connection goes through it

# The ALB's target group of the web tier. Or by tags: {"type": "elbv2", "target_group_tags": {"Env":
# "production", "Tier": "web"}}; for an ip target group add "server": "{ec2_private_ip}".
balancer = {"type": "elbv2", "target_group": "production-web"}

# Patching goes patch wave by patch wave (the PatchGroup tag: patch_wave1, then patch_wave2, ...), one host
# at a time, each drained from the ALB first. drain_timeout must cover the target group's
# deregistration_delay.timeout_seconds (AWS's default: 300 s): opsrun refuses to start otherwise.
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

# Cloud-side checks (verify/aws/, run once from this machine: `opsrun verify production aws`).
aws_checks = {
    "target_groups": ["production-web"],  # every registered target healthy
    "rds": {"instances": ["production-orders"], "max_snapshot_age_hours": 26},
    "elasticache": {"replication_groups": ["production-sessions"]},
    "sqs": {"dead_letter_queues": ["production-orders-dlq"]},
    "tls": {"endpoints": ["https://shop.example.com/"], "warn_days": 30, "fail_days": 14},
}
