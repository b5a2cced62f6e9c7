"""`python -m hyperpod_launcher ...` is the `hyperpod-launch` command."""

from hyperpod_launcher.cli.main import console

console()
