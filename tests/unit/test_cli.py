"""One command line: a command table with launch as the default, the launcher's own help on
every entry point, `--wait` as a flag, and modules that import alone without cycles."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from hyperpod_launcher.cli import main as cli
from tests.conftest import REPO

PACKAGE = REPO / "hyperpod_launcher"


def _run(*argv: str, main_py: bool = False) -> subprocess.CompletedProcess[str]:
    head = [str(REPO / "main.py")] if main_py else ["-m", "hyperpod_launcher"]
    return subprocess.run(
        [sys.executable, *head, *argv], capture_output=True, text=True, cwd=REPO, check=False
    )


@pytest.mark.parametrize(
    ("argv", "main_py"),
    [
        (["--help"], False),
        (["-h"], False),
        (["help"], False),
        (["--help"], True),
        # with overrides the launch path answers: Hydra's --help, through the help template
        (["recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain", "--help"], True),
    ],
)
def test_every_help_entry_point_shows_the_launchers_help(argv: list[str], main_py: bool) -> None:
    proc = _run(*argv, main_py=main_py)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == cli.help_text()
    text = proc.stdout
    assert "recipes=<recipe>" in text and "cluster=<cluster>" in text and "key=value" in text
    for command in cli.COMMANDS:
        assert f"\n  {command} " in text, command
    from hyperpod_launcher import backends

    assert all(name in text for name in backends.names())
    assert str(REPO / "recipes_collection" / "recipes") in text
    assert "_base" not in text and "powered by Hydra" not in text


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_each_command_has_its_own_help(command: str) -> None:
    for argv in ([command, "--help"], ["help", command]):
        proc = _run(*argv)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f"usage: hyperpod-launch {command} "), proc.stdout
        assert cli.COMMANDS[command].summary in proc.stdout


def test_a_command_is_one_table_entry(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setitem(
        cli.COMMANDS, "hello", cli.Command("say hello", f"{__name__}:_configure_hello")
    )
    assert cli.main(["hello", "--to", "you"]) == 0
    assert capsys.readouterr().out == "hello you\n"
    assert "\n  hello " in cli.help_text() and "say hello" in cli.help_text()


def _configure_hello(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", required=True)
    parser.set_defaults(run=lambda args: print(f"hello {args.to}") or 0)


def test_wait_is_a_flag_and_leaves_sys_argv_alone(tmp_path: Path, capsys) -> None:
    argv_before = list(sys.argv)
    # --wait reaches the config as wait=true: a dry run, which has nothing to wait for, says so
    code = cli.main(["--wait", "dry_run=true", f"base_results_dir={tmp_path}"])
    assert code == 2
    assert sys.argv == argv_before
    assert "error: dry_run=true and wait=true (or --wait) conflict" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_first_word_is_a_launch_with_one_line_error() -> None:
    proc = _run("hepl")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _imports(module: str) -> set[str]:
    """Every hyperpod_launcher module this one imports when it runs, at the top or inside a
    function."""
    known = set(_modules())
    path = REPO / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = REPO / module.replace(".", "/") / "__init__.py"
    tree = ast.parse(path.read_text())
    typing_only = {  # `if TYPE_CHECKING:` imports never run
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hyperpod_launcher"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("hyperpod_launcher."))
    return {name for name in found if name in known and name != module}


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = {module: _imports(module) for module in _modules()}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            cycle = " -> ".join([*path[path.index(module) :], module])
            pytest.fail(f"import cycle: {cycle}")
        if module in done:
            return
        for dep in sorted(graph[module]):
            visit(dep, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())


def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    procs = {
        module: subprocess.Popen(
            [sys.executable, "-c", f"import {module}"],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for module in _modules()
    }
    failed = {m: p.communicate()[1].strip().splitlines()[-1:] for m, p in procs.items()}
    assert {m: e for m, e in failed.items() if procs[m].returncode} == {}
