"""The render floor: a minimal @hydra.main app over the same recipes_collection
that only resolves cfg.recipes and writes it as YAML."""

import sys
from pathlib import Path

import hydra
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hyperpod_launcher.config import resolvers

resolvers.register()


@hydra.main(config_path="../recipes_collection", config_name="config", version_base=None)
def main(cfg):
    out = Path(cfg.base_results_dir) / "floor_recipe.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(OmegaConf.to_yaml(cfg.recipes, resolve=True))


if __name__ == "__main__":
    main()
