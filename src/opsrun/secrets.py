"""opsrun.model.secrets under its old name, kept for ops repositories: their deploys import it
(deploys/_redis_auth.py, deploys/_mongo_keyfile.py). opsrun's own code imports opsrun.model.secrets."""

from opsrun.model.secrets import *  # noqa: F403
