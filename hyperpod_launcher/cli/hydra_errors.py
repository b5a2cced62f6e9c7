"""Hydra and OmegaConf errors as one line: what is wrong, which key, what is allowed."""

from __future__ import annotations

import re
from typing import Any

from hyperpod_launcher.util import resources
from hyperpod_launcher.util.errors import did_you_mean


def _compose_without(dotted: str, argv: list[str]) -> Any:
    """The config composed from argv without the override of `dotted` (error path only)."""
    from hydra import compose, initialize_config_dir

    others = [a for a in argv if "=" in a and not a.startswith("-") and a.split("=")[0] != dotted]
    with initialize_config_dir(str(resources.config_dir()), version_base=None):
        return compose("config", overrides=others, return_hydra_config=True)


def _unknown_key(dotted: str, argv: list[str]) -> str:
    """The one-line error for an override of a key that does not exist."""
    from hyperpod_launcher.config.cluster_keys import wrong_backend

    try:
        cfg = _compose_without(dotted, argv)
    except Exception:
        cfg = None
    if cfg is not None:
        advice = wrong_backend(dotted, str(cfg.hydra.runtime.choices.get("cluster")))
        if advice:
            return advice
    hint = _suggest_override_key(dotted, cfg)
    return f"unknown key '{dotted}'{hint}; to add a new key use +{dotted}=..."


def _suggest_override_key(dotted: str, cfg: Any) -> str:
    """Nearest valid key for an override of a key that does not exist (error path only)."""
    if cfg is None:
        return ""
    try:
        from omegaconf import OmegaConf

        parent, _, leaf = dotted.rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        keys = list(node.keys()) if node is not None and hasattr(node, "keys") else []
        keys = [k for k in keys if parent or k != "hydra"]
        prefix = f"{parent}." if parent else ""
        return (
            did_you_mean(leaf, keys)
            .replace("'", "'" + prefix, 1)
            .replace(" or '", " or '" + prefix)
        )
    except Exception:
        return ""


def one_line(err: BaseException, argv: list[str]) -> str:
    """Hydra and OmegaConf errors as one line."""
    text = str(err)
    override = getattr(err, "override", None)  # Hydra's OverrideParseException names it
    if isinstance(override, str) and override:
        key, _, value = override.partition("=")
        return (
            f"{key}: cannot parse override '{override}' ({text.splitlines()[0]}); Hydra's "
            "override grammar gives ( ) [ ] { } , = # $ and spaces a meaning in an unquoted "
            f"value: quote it, e.g. {key}='\"{value}\"'"
        )
    match = re.search(r"Could not override '([^']+)'", text)
    if match:
        return _unknown_key(match.group(1), argv)
    match = re.search(r"Error parsing override '(.+)'", text) or re.search(
        r"^LexerNoViableAltException: (.+)$", text, re.MULTILINE
    )
    if match:
        return (
            f"cannot parse override '{match.group(1)}': quote values that hold characters "
            f"such as # [ ] {{ }} , = or spaces, e.g. key='\"a#b\"'"
        )
    match = re.search(r"Could not find '([^']+)'", text)
    if match:
        return f"config not found: {match.group(1)}"
    match = re.search(r"Missing mandatory value: (\S+)", text)
    if match:
        return f"missing value for '{match.group(1)}': set {match.group(1)}=..."
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(err).__name__)
    return first
