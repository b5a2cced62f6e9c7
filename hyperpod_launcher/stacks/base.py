"""What a training stack states about itself: one `Stack` in each `stacks/<name>/stack.py`.

A stack's recipe key schema is a `config.rules.Section` class whose annotations are the keys
it accepts: `X | None` where a recipe may leave a value unset, `Annotated[..., Range(...)]`
or `Literal[...]` for value rules (config/rules.py); `validate.check_section` checks a
resolved recipe against it before any other rule, and keys given with `+`/`++` may be added.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from hyperpod_launcher.config.instances import InstanceType
from hyperpod_launcher.config.time_limit import StepFacts
from hyperpod_launcher.stacks.resume import Resume
from hyperpod_launcher.util import lazy

Recipe = Mapping[str, Any]
Get = Callable[[str], Any]  # a dotted key of the whole config -> its value (None if unset)


@dataclass(frozen=True)
class Layout:
    """How a recipe spreads over the world: its parallel degrees, derived data parallelism."""

    stack: str
    world: int
    degrees: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = " ".join(f"{k}{v}" for k, v in self.degrees.items())
        return ", ".join([text, *self.notes]) if text else ", ".join(self.notes)


@dataclass(frozen=True)
class Need:
    """A value the training code needs at start (spec/required.py checks and fills them)."""

    key: str  # under recipes.
    what: str
    applies: Callable[[Get, str | None], bool]  # (get, the recipes= choice) -> needed?
    default: Literal["exp_dir", "data_dir", "cache_dir"] | None  # the BackendDefaults field
    how: str  # how to give it
    under: str = ""  # a folder of the default to use instead of the default itself


def always(get: Get, name: str | None) -> bool:
    return True


def checkpoints_on(get: Get, name: str | None) -> bool:
    return bool(get("recipes.exp_manager.create_checkpoint_callback"))


TRAIN_DIR = "TRAIN_DIR in the launch scripts"
EXP_DIR = "EXP_DIR in the launch scripts"
EXP_NEED = "the experiment folder (logs and checkpoints)"
# Hugging Face model types whose MLP is gated (three matrices: gate, up, down).
GATED_TYPES = ("llama_v3", "llama_v2", "mistral", "mixtral")


def gated_by_model_type(model: Mapping[str, Any]) -> bool | None:
    return True if str(model.get("model_type") or "") in GATED_TYPES else None


@dataclass(frozen=True)
class NeedsCuda:
    """A recipe setting whose kernels need CUDA (QLoRA's 4-bit bitsandbytes)."""

    key: str  # under recipes.
    value: str
    what: str  # the feature, for messages
    instead: str  # the value that runs without CUDA


def _no_rules(recipe: Recipe) -> None:
    return None


def _no_instance_rules(recipe: Recipe, instance: InstanceType, force_fp8: bool) -> None:
    return None


def _whole_world(name: str) -> Callable[[Recipe, int, int], Layout]:
    return lambda recipe, nodes, devices: Layout(name, nodes * devices)


@dataclass(frozen=True)
class Stack:
    """Everything the launcher knows of one training stack."""

    name: str
    schema: str  # "module:Class" of the top-level Section of its recipes, loaded on use
    # its parallel layout on nodes x devices (processes per node); raises UserError if it
    # does not fit. None: the world, no parallel degrees of ours
    layout: Callable[[Recipe, int, int], Layout] | None = None
    check: Callable[[Recipe], None] = _no_rules  # the rules after the layout's
    check_instance: Callable[[Recipe, InstanceType, bool], None] = _no_instance_rules
    accelerator: Literal["gpu", "neuron"] = "gpu"  # what its recipes train on
    needs_cuda: NeedsCuda | None = None
    required: tuple[Need, ...] = ()  # values its training code needs at start
    # how a restarted attempt resumes (resume.py); None: no code of ours runs the recipe
    resume: Callable[[Recipe], Resume] | None = None
    checkpoint_key: str | None = None  # the recipe key that says where it saves checkpoints
    final_model_key: str | None = None  # the recipe key naming where its final model goes
    package: str | None = None  # its package folder in a checkout of its pinned code
    in_container: tuple[str, str] | None = None  # (why its code is only in an image, example)
    env: tuple[str, ...] = ()  # rows of spec/env.py's ENV_TABLE only this stack gets
    entry: str = "examples/{family}/{family}_pretrain.py"  # when the recipe names no script
    writes_job_folder: bool = False  # without exp_dir its entry writes under the job folder
    step_facts: StepFacts | None = None  # its model-shape keys (run.time_limit's estimate)
    # whether its model's MLP is gated (three matrices), for the watcher's MFU; None where the
    # recipe does not tell. Unset: its step lines carry their own figures
    gated_mlp: Callable[[Mapping[str, Any]], bool | None] | None = None
    method: Callable[[Recipe], str] | None = None  # the training method, where it states it
    # (nodes, devices per node, instance type) of stacks that size their own jobs
    size: Callable[[Recipe], tuple[int, int, str]] | None = None
    # "module:function" building its own JobSpec (no code checkout, no entry of ours)
    own_job: str | None = None

    def recipe_schema(self) -> type:
        return lazy.load(self.schema)

    def layout_of(self, recipe: Recipe, nodes: int, devices: int) -> Layout:
        return (self.layout or _whole_world(self.name))(recipe, nodes, devices)
