"""Launch a training recipe: `python main.py recipes=<recipe> cluster=<backend> <overrides>`.

The same command line as `hyperpod-launch`: `python main.py --help`, `python main.py jobs`.
"""

from hyperpod_launcher.cli.main import console

if __name__ == "__main__":
    console()
