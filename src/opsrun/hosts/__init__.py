"""Reaching a host from the controller, outside pyinfra's operations: the run's one SSH configuration
(`sshconfig`), commands over OpenSSH (`remote`) with pyinfra's sudo rules (`sudo`), reboots and the health gates
after them (`reboot`, `health`), role probes for the rolling order (`probes`) and the host-side leases (`leases`)."""
