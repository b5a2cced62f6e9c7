"""Rules for the launcher's own values, shared by every builder of a JobSpec: names that
are safe as folder and job names, and `env_vars` split into plain and secret. (Counts and
ranges are schema types, `config.rules`, checked by `config.validate`.)"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hyperpod_launcher.spec.job import ENV_NAME
from hyperpod_launcher.util.errors import UserError
from hyperpod_launcher.util.masking import SECRET_ENV

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")


def split_env(
    env_vars: Mapping[str, Any], defaults: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    plain = dict(defaults)
    secret: dict[str, str] = {}
    for key, value in env_vars.items():
        if not ENV_NAME.match(key):
            raise UserError(f"env_vars.{key}: not a valid environment variable name")
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if SECRET_ENV.search(key):
            secret[key] = text
        else:
            plain[key] = text
    return plain, secret
