"""Rolling deploys: the plan (`plan`: pure batch arithmetic), the policy (`policy`: group_data and the command
line as one `Policy`) and the executor (`executor.Rollout`: the stages, batch by batch).

The names other modules use are re-exported here, so `from opsrun.rollout import make_plan` keeps working.
"""

from opsrun.rollout.executor import Events, Rollout
from opsrun.rollout.plan import (
    NO_WAVE,
    Plan,
    Size,
    batch_sizes,
    group_waves,
    make_plan,
    resolve,
)
from opsrun.rollout.policy import Policy, load_policy
from opsrun.rollout.stages import StageRunners

__all__ = [
    "NO_WAVE",
    "Events",
    "Plan",
    "Policy",
    "Rollout",
    "Size",
    "StageRunners",
    "batch_sizes",
    "group_waves",
    "load_policy",
    "make_plan",
    "resolve",
]
