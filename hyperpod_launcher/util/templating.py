"""The one Jinja2 environment: templates are files, values are quoted.

A template name is "<folder>/<file>": a shared folder (common/, launch_scripts/) or a backend
package whose templates/ folder holds the file ("slurm/sbatch.sh.j2" is
backends/slurm/templates/sbatch.sh.j2)."""

from __future__ import annotations

import shlex
from functools import cache
from typing import TYPE_CHECKING, Any

from hyperpod_launcher.util import resources

if TYPE_CHECKING:
    import jinja2


def shell_quote(value: Any) -> str:
    return shlex.quote(str(value))


def shell_join(values: Any) -> str:
    return " ".join(shlex.quote(str(v)) for v in values)


@cache
def environment() -> jinja2.Environment:
    import jinja2  # on first render only: status and logs commands never pay for it

    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.FileSystemLoader(str(resources.templates_dir())),
                jinja2.PrefixLoader(
                    {
                        backend: jinja2.FileSystemLoader(str(folder))
                        for backend, folder in resources.backend_templates_dirs().items()
                    }
                ),
            ]
        ),
        # Compiled templates are cached per user in the temp dir: a render is then ~10x faster.
        bytecode_cache=jinja2.FileSystemBytecodeCache(),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["sh"] = shell_quote
    env.filters["shjoin"] = shell_join
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)
