"""opsrun.support.waiting under its old name, kept for ops repositories: their deploys import `poll_until` from
here (deploys/_redis.py, deploys/_mongo.py). opsrun's own code imports opsrun.support.waiting."""

from opsrun.support.waiting import *  # noqa: F403
