"""NeMo Megatron GPT pretraining in NVIDIA's NeMo container (`run.model_type: nemo`)."""
