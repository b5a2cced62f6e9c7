"""Compose the launcher config in-process (Hydra's compose API), for catalog-wide work.

`main.py` stays a @hydra.main app; this is for code that composes many configs in one
process (tests, benchmarks, `recipes show`) and wants the same resolved dict the app gets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hyperpod_launcher.config import resolvers
from hyperpod_launcher.spec import required
from hyperpod_launcher.util import resources

if TYPE_CHECKING:
    from hyperpod_launcher.launch.execute import Plan


def compose(overrides: Sequence[str] = ()) -> tuple[dict[str, Any], dict[str, str | None]]:
    """Return (resolved config without the hydra node, the config-group choices)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf, open_dict

    resolvers.register()
    with initialize_config_dir(str(resources.config_dir()), version_base=None):
        cfg = hydra_compose("config", overrides=list(overrides), return_hydra_config=True)
    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    required.launch_defaults(cfg, choices.get("cluster"), choices.get("recipes"))
    resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    return resolved, choices  # type: ignore[return-value]


def plan(overrides: Sequence[str] = (), launch_id: str = "test") -> Plan:
    """The launch plan for these overrides, as `python main.py <overrides>` would make it."""
    from hyperpod_launcher.launch.execute import make_plan

    cfg, choices = compose(overrides)
    return make_plan(
        cfg,
        cluster_choice=choices.get("cluster"),
        recipe_choice=choices.get("recipes"),
        launch_id=launch_id,
        overrides=tuple(overrides),
    )
