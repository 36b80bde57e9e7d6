"""What a fleet is compared against: drift (dry runs and suites on every host, findings since when), membership
(is each host in its balancer, and who left it out) and the run history read back (`history`). The DR checks
(`opsrun.dr`) and the notifications of their outcomes (`opsrun.notify`) are packages of their own in this layer."""
