"""The Hydra entry: argv pre-checks, the task function, and one-line errors.

Hydra prints multi-line errors (an unknown recipe lists the whole search path) before the
app runs; `launch` catches them so the user sees one line: what is wrong, which key, what is
allowed (also with HYDRA_FULL_ERROR=1, which every HyperPod launch script sets). An unexpected
error is one line too, naming what failed and the log that holds its details. Everything a
launch prints, and Hydra's sweep file, goes through the masking rule (masking.py).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hyperpod_launcher.cli.hydra_errors import one_line
from hyperpod_launcher.config import resolvers
from hyperpod_launcher.util import masking, resources, yaml_text
from hyperpod_launcher.util.errors import LauncherError, UserError, did_you_mean

resolvers.register()


def _group_options(group: str) -> list[str]:
    root = resources.config_dir() / group
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))


def _check_choice(group: str, value: str, what: str) -> None:
    if group == "recipes" and (os.path.isabs(value) or ".." in Path(value).parts):
        raise UserError(
            f"recipes={value}: a recipe is a name under recipes_collection/recipes/, not a file "
            "path; for a recipe file of your own, put it at <folder>/recipes/<name>.yaml and "
            "run with --config-dir <folder> recipes=<name>"
        )
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


def hyperpod_values(argv: list[str]) -> list[str]:
    """Two habits of HyperPod's launch lines, in Hydra's terms: `key=` (the script's variable is
    unset) means null, as HyperPod reads it, so an optional key keeps no value and a required
    one gets its own error; `key={a: b}` sets a mapping the config leaves empty (`{}`), where
    Hydra would refuse the new sub-keys, so it is applied as `++key={a: b}`."""
    result = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or arg.startswith(("-", "+", "~")) or key in ("recipes", "cluster"):
            result.append(arg)
        elif value == "":
            result.append(f"{key}=null")
        elif value.startswith("{"):
            result.append(f"++{arg}")
        else:
            result.append(arg)
    return result


MAX_KEY = 200  # Hydra stats a config group file named after the key: a file name is <= 255


def precheck(argv: list[str]) -> None:
    """Check recipes= and cluster= before Hydra, so a typo gets one line with nearest names."""
    if any(a.startswith(CONFIG_DIR_FLAGS) for a in argv):
        return  # other search paths: let Hydra resolve them
    multirun = "-m" in argv or "--multirun" in argv
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~")
        if sep and len(key) > MAX_KEY:  # Hydra looks for a config file of that name
            raise UserError(
                f"{key[:40]}...: an override key of {len(key)} characters; at most {MAX_KEY} "
                "(a longer one belongs in a config file)"
            )
        if not sep or key not in ("recipes", "cluster") or "(" in value:
            continue
        for choice in value.split(",") if multirun else [value]:
            _check_choice(key, choice, "recipe" if key == "recipes" else "cluster")


CONFIG_DIR_FLAGS = ("--config-path", "--config-dir", "-cp", "-cd")


def with_launcher_configs(argv: list[str]) -> list[str]:
    """A config of the user's own folder (`--config-path=...`, HyperPod's custom-script flow)
    builds on the launcher's: its `config`, `cluster/` and `recipes/` stay on the search path."""
    if not any(a.startswith(CONFIG_DIR_FLAGS) for a in argv):
        return argv
    result = []
    for arg in argv:  # a relative folder is the user's, from here (Hydra: from the package)
        flag, sep, folder = arg.partition("=")
        if sep and flag in CONFIG_DIR_FLAGS and not os.path.isabs(folder) and os.path.isdir(folder):
            arg = f"{flag}={os.path.abspath(folder)}"
        result.append(arg)
    if any(a.lstrip("+").startswith("hydra.searchpath=") for a in argv):
        return result
    return [*result, f"hydra.searchpath=[file://{resources.config_dir()}]"]


def _report(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _compose_for_mode_only_when_overridden() -> None:
    """Hydra composes the whole config once just to read `hydra.mode`, then again to run it,
    which doubles the cost of a launch. No launcher config sets `hydra.mode`, so only an
    override can change it: compose for it only then (`-m` needs no compose: it is a flag)."""
    from hydra._internal.hydra import Hydra

    composing = Hydra.get_mode
    if getattr(composing, "launcher_patched", False):
        return

    def get_mode(self: Hydra, config_name: str | None, overrides: list[str]) -> Any:
        if any(o.lstrip("+~").startswith("hydra.mode=") for o in overrides):
            return composing(self, config_name, overrides)
        return None

    get_mode.launcher_patched = True  # type: ignore[attr-defined]
    Hydra.get_mode = get_mode  # type: ignore[method-assign]


def launch(argv: list[str], help_text: Callable[[], str], *, preflight_only: bool = False) -> int:
    """Launch from a command line of Hydra overrides and flags; return the exit code.
    `--wait` is the launcher's flag, given to the config as `wait=true`; Hydra's `--help`
    shows `help_text()` (the config's help template calls it). `preflight_only` composes and
    checks the job against the cluster, and queues nothing."""
    overrides = strip_yaml_suffix([("wait=true" if a == "--wait" else a) for a in argv])
    overrides = with_launcher_configs(hyperpod_values(overrides))
    with masking.masked_output(overrides), _config_files_masked():
        return _launch(overrides, [sys.argv[0], *argv], help_text, preflight_only)


def _launch(
    overrides: list[str], command_line: list[str], help_text: Callable[[], str], preflight: bool
) -> int:
    from hydra._internal.utils import _run_hydra, get_args_parser
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"

    def task(cfg: Any) -> None:
        hydra_task(cfg, command_line, preflight)

    try:
        precheck(overrides)
        # Hydra prints the template with a newline of its own.
        OmegaConf.register_new_resolver("hpl_help", lambda: help_text()[:-1], replace=True)
        parser = get_args_parser()
        args = parser.parse_args(overrides)
        # With HYDRA_FULL_ERROR set, Hydra re-raises instead of printing its own report.
        os.environ["HYDRA_FULL_ERROR"] = "1"
        _compose_for_mode_only_when_overridden()
        _run_hydra(
            args=args,
            args_parser=parser,
            task_function=task,
            config_path=str(resources.config_dir()),
            config_name="config",
        )
    except LauncherError as err:
        return _report(str(err), err.exit_code)
    except SystemExit as exit:  # argparse's usage errors, and a job's own exit status
        return exit.code if isinstance(exit.code, int) else int(exit.code is not None)
    except (HydraException, OmegaConfBaseException) as err:
        return _report(one_line(err, overrides), 2)
    except Exception as err:
        return _report(unexpected(err, "composing the config", None), 1)
    finally:
        if not full_error:
            os.environ.pop("HYDRA_FULL_ERROR", None)
    return 0


ERROR_LOG = "launcher_error-{launch_id}.log"


def unexpected(err: BaseException, doing: str, job_dir: str | None, launch_id: str = "") -> str:
    """The one line for an error the launcher did not expect: what failed, while doing what,
    and where the masked traceback went (the job folder, else the launcher's state folder)."""
    import tempfile
    import traceback

    from hyperpod_launcher.jobs.records import state_dir

    details = masking.mask("".join(traceback.format_exception(err)))
    if not launch_id:
        from hyperpod_launcher.launch.execute import new_launch_id

        launch_id = new_launch_id()
    name = ERROR_LOG.format(launch_id=launch_id)
    written = None
    for folder in (job_dir, str(state_dir()), tempfile.gettempdir()):
        if not folder:
            continue
        path = Path(folder) / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as log:
                log.write(details)
        except OSError:
            continue
        written = path
        break
    summary = " ".join(masking.mask(str(err)).split())[:300] or "(no message)"
    where = f"details in {written}" if written else "no log could be written"
    return f"internal error while {doing}: {type(err).__name__}: {summary}; {where}"


@contextlib.contextmanager
def _config_files_masked() -> Iterator[None]:
    """Hydra writes the composed config as `multirun.yaml` into the sweep folder with
    OmegaConf.save: make that write masked and private to the user while the launch runs."""
    from omegaconf import OmegaConf

    original = OmegaConf.__dict__["save"]

    def save(config: Any, f: Any, resolve: bool = False) -> None:
        plain = OmegaConf.to_container(config, resolve=resolve, enum_to_str=True)
        text = masking.mask(yaml_text.dump(plain))
        if isinstance(f, (str, Path)):
            fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
        else:
            f.write(text)

    OmegaConf.save = staticmethod(save)  # type: ignore[method-assign]
    try:
        yield
    finally:
        OmegaConf.save = original  # type: ignore[method-assign]


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


def hydra_task(cfg: Any, command_line: list[str], preflight_only: bool = False) -> None:
    """The task function: resolve the composed config, plan, check, write and submit.
    `command_line` is what the user ran (for launcher_cmd.log)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from hyperpod_launcher.launch.execute import execute, make_plan, new_launch_id
    from hyperpod_launcher.spec import required

    hydra_cfg = HydraConfig.get()
    choices = hydra_cfg.runtime.choices
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    launch_id = new_launch_id()
    doing, job_dir = "composing the config", None
    # Errors leave as SystemExit: Hydra would report any other exception at length first.
    try:
        if multirun:  # before resolving, so results_dir, checkpoint_dir... follow the name
            sweep_point(cfg, hydra_cfg.job.num)
        defaults = required.launch_defaults(cfg, choices.get("cluster"), choices.get("recipes"))
        resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
        doing = "building the job"
        plan = make_plan(
            resolved,  # type: ignore[arg-type]
            cluster_choice=choices.get("cluster"),
            recipe_choice=choices.get("recipes"),
            launch_id=launch_id,
            overrides=tuple(hydra_cfg.overrides.task),
        )
        masking.remember(plan.secrets.values())
        plan.backend.check_secrets(plan.request, plan.secrets)
        job_dir = plan.spec.job_dir
        from hyperpod_launcher.prepare import job_folder, preflight

        doing = "checking the job against its cluster"
        if preflight_only:
            sys.exit(0 if preflight.run(plan, cheap_only=False) else 1)
        if plan.spec.missing and not plan.launch.dry_run:  # a dry run warns of what it lacks
            raise UserError(plan.spec.missing[0])
        job_folder.check_owned(job_dir)
        if not plan.launch.dry_run:  # what submitting from here needs, before any file
            plan.backend.check_submit_host(plan.spec)
        preflight.before_launch(plan, resolved.get("preflight"))  # type: ignore[union-attr]
        doing = f"launching {plan.spec.name} on {plan.spec.backend}"
        returncode = execute(plan, command_line, defaults=defaults)
    except LauncherError as err:
        sys.exit(_report(str(err), err.exit_code))
    except OmegaConfBaseException as err:
        sys.exit(_report(one_line(err, command_line[1:]), 2))
    except Exception as err:
        log_dir = job_dir if job_dir and _is_safe_folder(job_dir) else None
        sys.exit(_report(unexpected(err, doing, log_dir, launch_id), 1))
    if returncode:
        sys.exit(returncode)


def _is_safe_folder(path: str) -> bool:
    from hyperpod_launcher.prepare import job_folder

    try:
        job_folder.check_owned(path)
    except LauncherError:
        return False
    return os.path.isdir(path)


def add_preflight(parser: argparse.ArgumentParser) -> None:
    """`hyperpod-launch preflight <overrides>`: compose as a launch would, check, queue nothing."""
    parser.add_argument(
        "overrides", nargs=argparse.REMAINDER, help="the overrides of a launch (key=value ...)"
    )
    parser.set_defaults(run=lambda args: launch(args.overrides, lambda: "", preflight_only=True))
