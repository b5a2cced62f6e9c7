"""Console script `hyperpod-launch`: job commands without loading Hydra, else a launch."""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) > 1:
        from hyperpod_launcher.commands import COMMANDS

        if sys.argv[1] in COMMANDS:
            from hyperpod_launcher import commands

            sys.exit(commands.main(sys.argv[1:]))
    from hyperpod_launcher import app

    app.main()
