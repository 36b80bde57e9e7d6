"""Production: the running EC2 instances tagged Env=production (region, credentials and endpoint the usual
AWS way). Groups: each Role tag value (group_data/ROLE.py applies), patch waves (PatchGroup=wave1 ->
patch_wave1), availability zones (az_us_east_1a). SSH settings and the ALB: group_data/production.py."""

from opsrun.aws import ec2_hosts

globals().update(ec2_hosts(env="production"))
