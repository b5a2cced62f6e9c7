"""Write launcher_scripts/<family>/run_<recipe>.sh for every recipe (the one generator).

    python -m hyperpod_launcher.catalog.launch_scripts          # (re)write the scripts
    python -m hyperpod_launcher.catalog.launch_scripts --check  # exit 1 if any script is stale

Each script selects the cluster explicitly (CLUSTER, default slurm) and the instance type the
recipe is sized for (INSTANCE_TYPE), takes the placeholders users know from HyperPod launch
scripts (TRAIN_DIR, VAL_DIR, EXP_DIR, MODEL_CONFIG, HF_MODEL_NAME_OR_PATH, HF_ACCESS_TOKEN)
where the recipe has the key, and RESUME_FROM_CHECKPOINT and TOKENIZER_TYPE on Trainium, and
passes extra arguments ("$@") on as overrides. The Hugging Face token is exported as HF_TOKEN
and only referenced on the command line (`${oc.env:HF_TOKEN}`), so it never shows in argv;
the launcher then moves it to the backend's secret channel.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyperpod_launcher.catalog import recipes as catalog
from hyperpod_launcher.util import resources, templating
from hyperpod_launcher.util.dotted import get

TEMPLATE = "launch_scripts/run_recipe.sh.j2"
SCRIPTS_DIR = "launcher_scripts"
LAUNCHER_DIR = "HYPERPOD_LAUNCHER_DIR"
TOKEN_REFERENCE = "${oc.env:HF_TOKEN}"


def _names_a_model(recipe: Mapping[str, Any]) -> bool:
    model = get(recipe, "model.hf_model_name_or_path")
    fine_tunes = get(recipe, "model.do_finetune") or get(recipe, "run.model_type") == "open_ft"
    return bool(fine_tunes) or model is not None


def _trains_on_neuron(recipe: Mapping[str, Any]) -> bool:
    return isinstance(recipe.get("distributed_strategy"), Mapping)  # the Trainium stack's section


@dataclass(frozen=True)
class Placeholder:
    env: str
    comment: str
    keys: tuple[tuple[str, str], ...]  # (recipe key, value format); the first key present wins
    secret: bool = False
    applies: Callable[[Mapping[str, Any]], bool] | None = None
    # recipe key -> overrides that go with it (e.g. NeMo reads data_prefix only off mock data)
    along: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def key_for(self, recipe: Mapping[str, Any]) -> tuple[str, str] | None:
        if self.applies is not None and not self.applies(recipe):
            return None
        return next(
            ((k, f) for k, f in self.keys if get(recipe, k, KeyError) is not KeyError), None
        )


PLACEHOLDERS = (
    Placeholder(
        "TRAIN_DIR",
        "location of the training data (absolute path or s3:// URI)",
        (
            ("model.data.train_dir", "{}"),
            ("data.train_dir", "{}"),
            ("model.data.data_prefix", "[{}]"),
        ),
        along={"model.data.data_prefix": ("model.data.data_impl=mmap",)},
    ),
    Placeholder(
        "VAL_DIR",
        "location of the validation data",
        (("model.data.val_dir", "{}"), ("data.val_dir", "{}")),
    ),
    Placeholder(
        "EXP_DIR",
        "where logs and checkpoints go",
        (("exp_manager.exp_dir", "{}"),),
    ),
    Placeholder(
        "MODEL_CONFIG",
        "the model's Hugging Face config.json (NxD Training builds the model from it)",
        (("model.model_config", "{}"),),
    ),
    Placeholder(
        "RESUME_FROM_CHECKPOINT",
        "an NxD checkpoint to start from (fine-tuning and continued pretraining need one)",
        (("exp_manager.resume_from_checkpoint", "{}"),),
        applies=_trains_on_neuron,
    ),
    Placeholder(
        "TOKENIZER_TYPE",
        "the tokenizer NxD Training's fine-tuning data loads (the pretrained model's folder)",
        (("data.tokenizer.type", "{}"),),
        applies=_trains_on_neuron,
    ),
    Placeholder(
        "HF_MODEL_NAME_OR_PATH",
        "Hugging Face model id or local path to start from",
        (("model.hf_model_name_or_path", "{}"),),
        applies=_names_a_model,
    ),
    Placeholder(
        "HF_ACCESS_TOKEN",
        "Hugging Face token for gated models; reaches the job only through the environment",
        (("model.hf_access_token", TOKEN_REFERENCE),),
        secret=True,
    ),
)


def placeholder_overrides(recipe: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """The overrides a recipe's script adds for the (non-empty) placeholder values in `env`."""
    plain: list[str] = []
    secret: list[str] = []
    for p in PLACEHOLDERS:
        found = p.key_for(recipe)
        if found is None or not env.get(p.env):
            continue
        key, fmt = found
        value = fmt if p.secret else fmt.format(env[p.env])
        (secret if p.secret else plain).append(f"recipes.{key}={value}")
        plain += [f"recipes.{o}" for o in p.along.get(key, ())]
    return [*plain, *secret]


def script_path(name: str) -> str:
    family = catalog.family_of(name)
    return f"{SCRIPTS_DIR}/{family}/run_{Path(name).name}.sh"


def _dq(text: str) -> str:
    """A double-quoted bash word (the text holds only $VAR references that should expand)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`") + '"'


def _cluster(info: catalog.RecipeInfo) -> str:
    """The default cluster, unless the recipe's stack runs only on some backends (Nova)."""
    from hyperpod_launcher import backends
    from hyperpod_launcher.config.schema import DEFAULT_CLUSTER

    owners = backends.runs_stack(info.stack)
    return owners[0] if len(owners) < len(backends.names()) else DEFAULT_CLUSTER


def render(name: str, cfg: Mapping[str, Any]) -> str:
    info = catalog.describe(name, cfg)
    recipe = cfg.get("recipes")
    results = "${BASE_RESULTS_DIR:-${" + LAUNCHER_DIR + "}/results}"
    fixed = [shlex.quote(f"recipes={name}"), _dq("cluster=${CLUSTER:-" + _cluster(info) + "}")]
    if info.instance_type:
        fixed.append(_dq("instance_type=${INSTANCE_TYPE:-" + info.instance_type + "}"))
    fixed.append(_dq(f"base_results_dir={results}"))
    placeholders = []
    if isinstance(recipe, Mapping):
        fixed.append(shlex.quote(f"recipes.run.name={info.run_name}"))
        scale = f"{info.nodes} x {info.instance_type or 'node'}, {info.devices} processes each"
        for p in PLACEHOLDERS:
            found = p.key_for(recipe)
            if found is None:
                continue
            key, fmt = found
            arg = (
                shlex.quote(f"recipes.{key}={fmt}")
                if p.secret
                else _dq(f"recipes.{key}=" + fmt.format("$" + p.env))
            )
            arg = " ".join([arg, *(shlex.quote(f"recipes.{o}") for o in p.along.get(key, ()))])
            default = "${" + p.env + ":-}"
            placeholders.append({**vars(p), "arg": arg, "default": default})
    else:
        fixed.append(shlex.quote(f"training_cfg.run.name={info.run_name}"))
        scale = f"{info.nodes} node x {info.devices} processes"
    return templating.render(
        TEMPLATE,
        summary=info.summary,
        name=name,
        scale=scale,
        path=script_path(name),
        fixed=fixed,
        placeholders=placeholders,
    )


def generate(names: Sequence[str] | None = None) -> dict[str, str]:
    """{relative path: script text} for every recipe."""
    names = list(names or catalog.recipe_names())
    scripts: dict[str, str] = {}
    with catalog.Composer() as composer:
        for name, cfg in composer.many(names):
            path = script_path(name)
            if path in scripts:
                raise RuntimeError(f"two recipes map to {path}; rename one of them")
            scripts[path] = render(name, cfg)
    return dict(sorted(scripts.items()))


# Launch scripts written by hand (HyperPod's custom-script flow), which the generator leaves be.
HAND_WRITTEN = frozenset({f"{SCRIPTS_DIR}/custom_script/run_allreduce.sh"})


def stale(root: Path, scripts: Mapping[str, str]) -> list[str]:
    """Scripts that differ from what the generator writes, are missing, or are left over."""
    found = {p.relative_to(root).as_posix() for p in (root / SCRIPTS_DIR).glob("*/run_*.sh")}
    found -= HAND_WRITTEN
    problems = [p for p, text in scripts.items() if not (root / p).is_file()]
    problems += [
        p for p, text in scripts.items() if (root / p).is_file() and (root / p).read_text() != text
    ]
    problems += sorted(found - set(scripts))
    return sorted(problems)


def write(root: Path, scripts: Mapping[str, str]) -> list[str]:
    changed = stale(root, scripts)
    for rel in changed:
        path = root / rel
        if rel not in scripts:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(scripts[rel])
        path.chmod(0o755)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hyperpod_launcher.catalog.launch_scripts",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if any script is stale")
    parser.add_argument(
        "--root",
        type=Path,
        default=resources.config_dir().parent,
        help="repository root holding launcher_scripts/ (default: this checkout)",
    )
    args = parser.parse_args(argv)
    scripts = generate()
    if args.check:
        problems = stale(args.root, scripts)
        for rel in problems:
            print(f"stale: {rel}", file=sys.stderr)
        if problems:
            print(
                "run `python -m hyperpod_launcher.catalog.launch_scripts` and commit the result",
                file=sys.stderr,
            )
        return 1 if problems else 0
    changed = write(args.root, scripts)
    print(f"{len(scripts)} launch scripts, {len(changed)} written or removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
