"""opsrun: rolling pyinfra deploys behind load balancers, testinfra verification, drift and DR reports."""
