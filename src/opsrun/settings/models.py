"""The schemas of every setting opsrun or a deploy reads from group_data and inventories: one pydantic model
per family, strict (no "2" for 2, no True for a port), closed (`extra="forbid"`: a misspelt setting is an
error), with ranges and, for every value that reaches a shell, a config file or a protocol line, the
characters it may hold.

    SSHSettings        ssh_* (pyinfra's SSH connector data), also written to verify's ssh_config
    RollingPolicy      rolling / DEPLOY_rolling, with its HealthGate
    Balancer           balancer / DEPLOY_balancer: HAProxyBalancer | NginxBalancer | ELBv2Balancer
    NginxSettings      nginx_*            (deploys/nginx.py)
    Pm2Settings        pm2_* with Pm2App  (deploys/pm2.py)
    PatchingSettings   patching_*, apt_repositories (deploys/patching.py)
    RedisSettings      redis_cluster_*    (deploys/redis_cluster.py)
    MongoSettings      mongo_replicaset_* (deploys/mongo_replicaset.py)
    DRSettings         dr                 (opsrun dr-test)

A field's `description` is the fix an error message gives for it. The models live by family in
`values` (shared types), `rollout_models`, `deploy_models` and `dr_models`; this module names them all.
"""

from __future__ import annotations

from opsrun.settings.deploy_models import (
    MEMORY,
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
from opsrun.settings.rollout_models import (
    DEADLINE,
    HEALTH_KEYS,
    SERIAL_FIX,
    Balancer,
    BalancerSetting,
    BatchSize,
    DeadlinesSetting,
    ELBv2Balancer,
    HAProxyBalancer,
    HealthGate,
    NginxBalancer,
    RollingPolicy,
    RollingSetting,
    SSHSettings,
    StageDeadlines,
)
from opsrun.settings.values import (
    ENV_NAME_RE,
    FIX_NAME,
    FIX_PATH,
    FIX_PORT,
    GLOB_RE,
    HOSTNAME_RE,
    LINE_RE,
    NAME_RE,
    PATH_RE,
    SETTING_WORD_RE,
    AbsGlob,
    AbsPath,
    EnvName,
    Hostname,
    Line,
    Name,
    Port,
    Seconds,
    Size,
    Strict,
    template_keys,
)

__all__ = [
    "DEADLINE",
    "ENV_NAME_RE",
    "FIX_NAME",
    "FIX_PATH",
    "FIX_PORT",
    "GLOB_RE",
    "HEALTH_KEYS",
    "HOSTNAME_RE",
    "LINE_RE",
    "MEMORY",
    "NAME_RE",
    "PATH_RE",
    "SERIAL_FIX",
    "SETTING_WORD_RE",
    "AbsGlob",
    "AbsPath",
    "BackupSpec",
    "Balancer",
    "BalancerSetting",
    "BatchSize",
    "DRSetting",
    "DRSettings",
    "DeadlinesSetting",
    "ELBv2Balancer",
    "EnvName",
    "HAProxyBalancer",
    "HealthGate",
    "Hostname",
    "Line",
    "MongoSettings",
    "Name",
    "NginxBalancer",
    "NginxSettings",
    "PatchingSettings",
    "Pm2App",
    "Pm2Logrotate",
    "Pm2Settings",
    "Port",
    "PostgresDR",
    "RedisSettings",
    "RollingPolicy",
    "RollingSetting",
    "SSHSettings",
    "Seconds",
    "SecretEnvOnly",
    "Size",
    "StageDeadlines",
    "Strict",
    "Targets",
    "template_keys",
]
