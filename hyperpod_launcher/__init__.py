"""hyperpod-launcher: a Hydra-driven launcher for distributed LLM training recipes."""

__version__ = "0.1.0"
