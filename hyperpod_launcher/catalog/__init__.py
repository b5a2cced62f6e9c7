"""The recipe catalog, the catalog-wide dry run and the launch-script generator."""
