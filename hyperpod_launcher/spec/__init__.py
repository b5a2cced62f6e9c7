"""Build and validate the backend-neutral JobSpec from the composed config."""
