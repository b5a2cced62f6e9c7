"""Launch a training recipe: `python main.py recipes=<recipe> cluster=<backend> <overrides>`."""

import hydra

from hyperpod_launcher.app import hydra_task, run


@hydra.main(config_path="recipes_collection", config_name="config", version_base=None)
def main(cfg):
    hydra_task(cfg)


if __name__ == "__main__":
    run(main)
