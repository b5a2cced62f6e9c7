"""The `hyperpod-launch` command line (and `python main.py`, the same).

The first word picks a command from COMMANDS; anything else is a launch, handed to Hydra.
A command is one entry: its one-line summary and a "module:function" that adds its arguments
to an argparse parser and sets `run` (a handler taking the parsed arguments, returning the exit
code). Only the chosen command's module is imported, so `jobs` loads neither Hydra nor an SDK.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from hyperpod_launcher.cli.table import format_table
from hyperpod_launcher.util import lazy, resources
from hyperpod_launcher.util.errors import LauncherError

PROG = "hyperpod-launch"


@dataclass(frozen=True)
class Command:
    summary: str
    configure: str  # "module:function(parser)": adds the arguments, sets `run`


COMMANDS: dict[str, Command] = {
    "jobs": Command(
        "recent launches with their current state", "hyperpod_launcher.cli.job_commands:add_jobs"
    ),
    "status": Command("a job's state", "hyperpod_launcher.cli.job_commands:add_status"),
    "logs": Command("a job's output", "hyperpod_launcher.cli.job_commands:add_logs"),
    "cancel": Command(
        "stop a job (a finished job is left as it is)",
        "hyperpod_launcher.cli.job_commands:add_cancel",
    ),
    "recipes": Command(
        "browse the recipe catalog: list, show", "hyperpod_launcher.cli.recipe_commands:add_recipes"
    ),
    "schema": Command(
        "JSON Schema of config.yaml, a cluster file or a stack's recipes",
        "hyperpod_launcher.cli.schema_command:add_schema",
    ),
    "preflight": Command(
        "check a launch against its cluster, queueing nothing",
        "hyperpod_launcher.cli.app:add_preflight",
    ),
}
HELP_WORDS = ("help", "--help", "-h")


def _choices(group: str) -> list[str]:
    root = resources.config_dir() / group
    return sorted(p.stem for p in root.glob("*.yaml"))


def help_text() -> str:
    """The launcher's help (also Hydra's `--help`, through the help template)."""
    from hyperpod_launcher import backends

    rows = [*((name, c.summary) for name, c in COMMANDS.items()), ("help", "this text")]
    commands = "\n".join(f"  {line}" for line in format_table(rows).splitlines())
    recipes = resources.config_dir() / "recipes"
    return f"""\
usage: {PROG} recipes=<recipe> [cluster=<cluster>] [key=value ...] [--wait] [-m]
       {PROG} <command> [options]   (`{PROG} <command> --help`: its options)
       python main.py ...   (the same command line)

Launch a training recipe on Slurm, Kubernetes, SageMaker training jobs or this machine.

launch (the default command):
  recipes=<recipe>    the recipe: a path under {recipes}
                      (e.g. training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain;
                      browse them with `{PROG} recipes list`)
  cluster=<cluster>   where it runs: {", ".join(_choices("cluster"))}
  key=value           any override, e.g. instance_type=p5.48xlarge recipes.trainer.num_nodes=4
  instance_type=<t>   the instance of each node (p5.48xlarge or ml.p5.48xlarge): devices, EFA,
                      fp8; a type the launcher does not know needs its devices:
                      instance_devices=gpu:<GPUs>, neuron:<devices>[:<cores per device>] or cpu
  training_cfg.entry_script=<script>
                      your own script: one process per accelerator of the instance (per GPU
                      on cluster=local) and a job named after the script, unless
                      training_cfg.run.ntasks_per_node / training_cfg.run.name say otherwise
  cpu_processes=<n>   processes per node without an accelerator (cluster=local without GPUs,
                      plain nodes); a GPU recipe on cluster=local without GPUs needs it
  dry_run=true        write the job folder and print the submit request; submit nothing
  --wait              follow the job to its end and exit with its outcome
  -m, --multirun      one job per sweep point, e.g. -m recipes.model.max_steps=10,20
  --cfg job           print the composed config instead of launching

commands:
{commands}

backends: {", ".join(backends.names())} (cluster defaults: {resources.config_dir() / "cluster"})
"""


def _run_command(name: str, argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"{PROG} {name}", description=COMMANDS[name].summary)
    lazy.load(COMMANDS[name].configure)(parser)
    args, extra = parser.parse_known_args(list(argv))  # usage errors: argparse exits 2
    takes_overrides = isinstance(getattr(args, "overrides", None), list)
    if extra and takes_overrides and all("=" in arg for arg in extra):
        args.overrides += extra  # overrides after a flag: `recipes show NAME --schema k=v`
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from hyperpod_launcher.util.masking import masked_output

    # A secret that reached a job's record or log (or a recipe) prints as ****, as in a launch.
    with masked_output(getattr(args, "overrides", None) or ()):
        try:
            return int(args.run(args))
        except LauncherError as err:
            print(f"error: {err}", file=sys.stderr)
            return err.exit_code
        except BrokenPipeError:  # `recipes list | head`
            return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line; return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    first = argv[0] if argv else ""
    if first in COMMANDS:
        return _run_command(first, argv[1:])
    if first in HELP_WORDS:
        topic = argv[1] if len(argv) > 1 else ""
        if topic in COMMANDS:
            return _run_command(topic, ["--help"])
        print(help_text(), end="")
        return 0
    from hyperpod_launcher.cli import app

    return app.launch(argv, help_text)


def console() -> None:
    """The `hyperpod-launch` console script."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # `... | head`: the reader left; that is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)
