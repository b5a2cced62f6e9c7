"""The Hydra entry: argv pre-checks, the task function, and one-line errors.

Hydra prints multi-line errors (an unknown recipe lists the whole search path) before the
app runs; `run` catches them so the user sees one line: what is wrong, which key, what is
allowed. HYDRA_FULL_ERROR=1 shows Hydra's own report and traceback instead.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hyperpod_launcher import resources
from hyperpod_launcher.config import resolvers
from hyperpod_launcher.errors import LauncherError, UserError, did_you_mean

resolvers.register()

CLI_COMMANDS: tuple[str, ...] = ("recipes",)  # non-launch commands: hyperpod_launcher.cli
# `hyperpod-launch preflight <overrides>`: compose as a launch would, check, queue nothing.
PREFLIGHT_COMMAND = "preflight"
_preflight_only = False


def _group_options(group: str) -> list[str]:
    root = resources.config_dir() / group
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))


def _check_choice(group: str, value: str, what: str) -> None:
    if value in ("null", "") or (resources.config_dir() / group / f"{value}.yaml").is_file():
        return
    stem, suffix = os.path.splitext(value)
    if suffix and (resources.config_dir() / group / f"{stem}.yaml").is_file():
        raise UserError(
            f"{group}={value}: unknown {what}; a name ends in .yaml or nothing: {group}={stem}"
        )
    options = _group_options(group)
    hint = did_you_mean(value, options) or did_you_mean(Path(value).name, options)
    if group == "cluster":
        hint += f"; allowed: {', '.join(options)}"
    raise UserError(f"{group}={value}: unknown {what}{hint}")


# Names HyperPod's v1 launch scripts use for a recipe stored under another name.
RECIPE_ALIASES = {  # run_hf_llama3_8b_seq8k_trn1_fine_tuning.sh names it under training/
    "training/llama/hf_llama3_8b_seq8k_trn1_fine_tuning": (
        "fine-tuning/llama/hf_llama3_8b_seq8k_trn1_fine_tuning"
    ),
}


def _choice(group: str, value: str) -> str:
    value = value.removesuffix(".yaml")
    return RECIPE_ALIASES.get(value, value) if group == "recipes" else value


def strip_yaml_suffix(argv: list[str]) -> list[str]:
    """`recipes=<name>.yaml` (as HyperPod's launch scripts write it) means `recipes=<name>`:
    drop the suffix (and map RECIPE_ALIASES) before Hydra, so choice, records and job are the
    same."""
    multirun = "-m" in argv or "--multirun" in argv
    result = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        group = key.lstrip("+~")
        if sep and group in ("recipes", "cluster") and "(" not in value:
            choices = value.split(",") if multirun else [value]
            arg = key + sep + ",".join(_choice(group, c) for c in choices)
        result.append(arg)
    return result


def precheck(argv: list[str]) -> None:
    """Check recipes= and cluster= before Hydra, so a typo gets one line with nearest names."""
    if any(a.startswith(("--config-path", "--config-dir", "-cp", "-cd")) for a in argv):
        return  # other search paths: let Hydra resolve them
    multirun = "-m" in argv or "--multirun" in argv
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~")
        if not sep or key not in ("recipes", "cluster") or "(" in value:
            continue
        for choice in value.split(",") if multirun else [value]:
            _check_choice(key, choice, "recipe" if key == "recipes" else "cluster")


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


def _fail(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def run(hydra_main: Callable[[], Any]) -> None:
    """Run a @hydra.main function with one-line errors and launcher exit codes."""
    # `--wait` is the launcher's flag, not Hydra's: pass it on as the `wait` config key.
    sys.argv = [
        sys.argv[0],
        *strip_yaml_suffix(["wait=true" if a == "--wait" else a for a in sys.argv[1:]]),
    ]
    argv = sys.argv[1:]
    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    try:
        precheck(argv)
    except UserError as err:
        _fail(str(err), err.exit_code)
    # With HYDRA_FULL_ERROR set, Hydra re-raises instead of printing its own report.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        hydra_main()
    except LauncherError as err:
        _fail(str(err), err.exit_code)
    except Exception as err:
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        if full_error or not isinstance(err, (HydraException, OmegaConfBaseException)):
            raise
        _fail(one_line(err, argv), 2)


def sweep_point(cfg: Any, num: int) -> None:
    """Give a sweep point its own run name (`<run.name>-<num>`, so its own job folder) and its
    own experiment folder (`<exp_dir>/<that name>`): points must not resume each other."""
    from omegaconf import OmegaConf

    for run_key in ("recipes.run", "training_cfg.run"):
        run = OmegaConf.select(cfg, run_key, throw_on_missing=False)
        name = OmegaConf.select(cfg, f"{run_key}.name", throw_on_missing=False)
        if run is None or name is None:
            continue
        run.name = f"{name}-{num}"
        exp_dir = OmegaConf.select(cfg, "recipes.exp_manager.exp_dir", throw_on_missing=False)
        if run_key == "recipes.run" and exp_dir:
            cfg.recipes.exp_manager.exp_dir = f"{str(exp_dir).rstrip('/')}/{run.name}"


def hydra_task(cfg: Any) -> None:
    """The task function: resolve the composed config, plan, write and submit."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from hyperpod_launcher.launch import execute, make_plan, new_launch_id

    hydra_cfg = HydraConfig.get()
    choices = hydra_cfg.runtime.choices
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        if multirun:  # before resolving, so results_dir, checkpoint_dir... follow the name
            sweep_point(cfg, hydra_cfg.job.num)
        resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
        plan = make_plan(
            resolved,  # type: ignore[arg-type]
            cluster_choice=choices.get("cluster"),
            recipe_choice=choices.get("recipes"),
            launch_id=new_launch_id(),
            overrides=tuple(hydra_cfg.overrides.task),
        )
        from hyperpod_launcher import preflight

        if _preflight_only:
            sys.exit(0 if preflight.run(plan, cheap_only=False) else 1)
        preflight.before_launch(plan, resolved.get("preflight"))  # type: ignore[union-attr]
        returncode = execute(plan, sys.argv)
    except LauncherError as err:
        _fail(str(err), err.exit_code)
    except OmegaConfBaseException as err:
        _fail(one_line(err, sys.argv[1:]), 2)
    if returncode:
        sys.exit(returncode)


def main() -> None:
    """Console script: `hyperpod-launch <overrides>` launches; `hyperpod-launch jobs` etc."""
    if len(sys.argv) > 1 and sys.argv[1] in CLI_COMMANDS:
        from hyperpod_launcher import cli

        sys.exit(cli.main(sys.argv[1:]))
    if len(sys.argv) > 1 and sys.argv[1] == PREFLIGHT_COMMAND:
        global _preflight_only
        _preflight_only = True
        del sys.argv[1]
    import hydra

    task = hydra.main(
        config_path=str(resources.config_dir()), config_name="config", version_base=None
    )(hydra_task)
    run(task)
