"""A custom script: the user's own entry, configured by `training_cfg` instead of a recipe."""
