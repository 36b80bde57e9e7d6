"""The schemas of every setting opsrun or a deploy reads from group_data and inventories: one pydantic model
per family, strict (no "2" for 2, no True for a port), closed (`extra="forbid"`: a misspelt setting is an
error), with ranges and, for every value that reaches a shell, a config file or a protocol line, the
characters it may hold.

    SSHSettings        ssh_* (pyinfra's SSH connector data, and ssh_jump), the one ssh_config of a run
    SudoSettings       _sudo, _sudo_user, _sudo_password (pyinfra's escalation arguments as host data)
    RollingPolicy      rolling / DEPLOY_rolling, with its HealthGate and CanaryPolicy
    Balancer           balancer / DEPLOY_balancer: HAProxyBalancer | NginxBalancer | ELBv2Balancer
    NginxSettings      nginx_*            (deploys/nginx.py)
    Pm2Settings        pm2_* with Pm2App  (deploys/pm2.py)
    PatchingSettings   patching_*, apt_repositories (deploys/patching.py)
    RedisSettings      redis_cluster_*    (deploys/redis_cluster.py)
    MongoSettings      mongo_replicaset_* (deploys/mongo_replicaset.py)
    DRSettings         dr                 (opsrun dr-test)
    NotifySettings     notify             (opsrun drift and dr-test: PagerDuty)

A field's `description` is the fix an error message gives for it. The models live by family in
`rollout_models`, `deploy_models`, `dr_models` and `notify_models` (their shared value types in `values`); this module
names every model.
"""

from __future__ import annotations

from opsrun.settings.deploy_models import (
    MongoSettings,
    NginxSettings,
    PatchingSettings,
    Pm2App,
    Pm2Logrotate,
    Pm2Settings,
    RedisSettings,
    SecretEnvOnly,
)
from opsrun.settings.dr_models import (
    BackupSpec,
    DRSetting,
    DRSettings,
    PostgresDR,
    Targets,
)
from opsrun.settings.notify_models import NotifySetting, NotifySettings, PagerDuty
from opsrun.settings.rollout_models import (
    Balancer,
    BalancerSetting,
    CanaryPolicy,
    DeadlinesSetting,
    ELBv2Balancer,
    HAProxyBalancer,
    HealthGate,
    NginxBalancer,
    RollingPolicy,
    RollingSetting,
    SSHSettings,
    StageDeadlines,
    SudoSettings,
)

__all__ = [
    "BackupSpec",
    "Balancer",
    "BalancerSetting",
    "CanaryPolicy",
    "DRSetting",
    "DRSettings",
    "DeadlinesSetting",
    "ELBv2Balancer",
    "HAProxyBalancer",
    "HealthGate",
    "MongoSettings",
    "NginxBalancer",
    "NginxSettings",
    "NotifySetting",
    "NotifySettings",
    "PagerDuty",
    "PatchingSettings",
    "Pm2App",
    "Pm2Logrotate",
    "Pm2Settings",
    "PostgresDR",
    "RedisSettings",
    "RollingPolicy",
    "RollingSetting",
    "SSHSettings",
    "SecretEnvOnly",
    "StageDeadlines",
    "SudoSettings",
    "Targets",
]
