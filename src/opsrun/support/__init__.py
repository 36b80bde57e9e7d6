"""Plumbing every room that acts may use: child processes (`processes`), the one polling loop with a deadline
(`waiting`), progress events (`progress`) and the road for log lines to a person (`logs`). Above the data rooms
(`model`, `settings`: logs mask secrets through `model.secrets`), below everything that touches a host."""
