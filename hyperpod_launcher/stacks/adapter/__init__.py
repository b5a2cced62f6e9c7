"""The HyperPod training adapter (SMP v2 + FSDP on GPUs, `run.model_type: hf`)."""
