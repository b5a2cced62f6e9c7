"""Config: resolvers, schemas and validation of the composed Hydra config."""
