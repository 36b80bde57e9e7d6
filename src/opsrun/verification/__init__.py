"""Running a deploy's verify suite: what both sides agree on (`protocol`: names, environment, the backend's URL
scheme), the controller's side (`verify`: host-scoped suites in one served pytest; `controller`: controller-scoped
suites; `suite_process`: the served pytest's pipes) and the suite's own pytest (`pytest_plugin` and `ssh_shell`,
the testinfra backend: the only modules that import testinfra)."""
