"""Open fine-tuning: TRL's SFT, DPO and GRPO with Transformers' Trainer (`run.model_type:
open_ft`), run by the launcher's own entry (examples/open_ft.py)."""
