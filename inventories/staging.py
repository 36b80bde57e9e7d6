"""Staging: the running EC2 instances tagged Env=staging; the same tag scheme as production.py.
SSH settings and the ALB: group_data/staging.py."""

from opsrun.aws import ec2_hosts

globals().update(ec2_hosts(env="staging"))
