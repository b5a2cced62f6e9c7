"""Recipe kinds and their schemas: the keys, types and value rules of each stack's recipes.

A recipe's kind is its stack (`recipe_checks.stack_of`: `run.model_type` names it). Each kind
has one schema in its own module, imported on first use (a launch loads only its own). Each
section is a `rules.Section` class whose annotations are the keys it accepts: `X | None` where
a recipe may leave a value unset, `Annotated[..., Range(...)]` (config/rules.py) or
`Literal[...]` for value rules. `validate.check_section` checks a resolved recipe against it
before any other recipe rule; keys given with `+`/`++` may be added.

To add a recipe kind (a new training stack):
1. Write `hyperpod_launcher/config/recipe_<kind>.py` with its top-level Section class, reusing
   what `recipe_common` has that fits (RunSection, PRECISION, NEMO_OPTIMIZERS).
2. Register it in RECIPE_SCHEMAS below ("<kind>": "module:Class"), and map the recipes'
   `run.model_type` to "<kind>" in `recipe_checks.STACKS`.
`tests/unit/test_recipe_schemas.py` then checks every catalog recipe of that kind against it.
"""

from __future__ import annotations

RECIPE_SCHEMAS = {
    "adapter": "hyperpod_launcher.config.recipe_adapter:AdapterRecipe",
    "neuron": "hyperpod_launcher.config.recipe_neuron:NeuronRecipe",
    "nemo": "hyperpod_launcher.config.recipe_nemo:NemoRecipe",
    "open": "hyperpod_launcher.config.recipe_open_ft:OpenRecipe",
    "nova": "hyperpod_launcher.config.recipe_nova:NovaRecipe",
    # custom-script mode: the top-level training_cfg section
    "custom": "hyperpod_launcher.config.schema:TrainingCfg",
}


def kinds() -> tuple[str, ...]:
    return tuple(RECIPE_SCHEMAS)


def recipe_schema(kind: str) -> type:
    from hyperpod_launcher.util import lazy

    return lazy.load(RECIPE_SCHEMAS[kind])
