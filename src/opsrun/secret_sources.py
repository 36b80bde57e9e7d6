"""opsrun.model.secret_sources under its old name, kept for ops repositories: their deploys import it (deploys/pm2.py,
deploys/_redis.py read a secret_env entry with it). opsrun's own code imports opsrun.model.secret_sources."""

from opsrun.model.secret_sources import *  # noqa: F403
