"""Running a deploy's verify suite: what both sides agree on (`protocol`: names, environment, the backend's URL
scheme, the pytest command line, the result line and the exit codes that mean the suite ran), the controller's side
(`controller.scope_of` decides where a suite runs; `verify`: host-scoped suites in one served pytest; `controller`:
controller-scoped suites; `suite_process`: starting the suite's pytest, and the served one's pipes) and the suite's
own pytest (`pytest_plugin` and `ssh_shell`, the testinfra backend: the only modules that import testinfra)."""
