"""DeepSpeed training of a Hugging Face causal LM: the entry script of the DeepSpeed recipes.

torchrun starts one process per GPU (RANK, LOCAL_RANK, WORLD_SIZE in the environment) with
`--config-path=<job folder> --config-name=<name>_hydra.yaml`. The resolved recipe names the model
(`model.hf_model_name_or_path`), the data (`model.data.train_dir`: JSON, JSON.GZ or Arrow files
with a "text" column) and the DeepSpeed config the launcher generated next to it
(`deepspeed.config_file`, holding ZeRO stage, offload, batch sizes, optimizer and scheduler).
DeepSpeed picks DeepSpeedCPUAdam when the optimizer state is offloaded, FusedAdam otherwise.

Dependencies (in the job's image): torch, deepspeed, transformers, datasets, pyyaml.
`--check` loads and cross-checks the configs only, without those heavy imports.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import yaml

NO_DECAY = ("bias", "norm.weight", "layernorm.weight", "ln_f.weight")


def load(config_path: str, config_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The resolved recipe and its DeepSpeed config; exits with one line if they disagree."""
    with open(os.path.join(config_path, config_name)) as handle:
        recipe = yaml.safe_load(handle)
    ds_file = os.path.join(config_path, recipe["deepspeed"]["config_file"])
    with open(ds_file) as handle:
        ds_config = json.load(handle)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    micro = ds_config["train_micro_batch_size_per_gpu"]
    accum = ds_config["gradient_accumulation_steps"]
    if ds_config["train_batch_size"] != micro * accum * world:
        sys.exit(
            f"{ds_file}: train_batch_size {ds_config['train_batch_size']} != micro batch {micro}"
            f" x accumulation {accum} x world size {world}"
        )
    return recipe, ds_config


def _data_files(path: str) -> tuple[str, list[str]]:
    if os.path.isfile(path):
        files = [path]
    else:
        files = sorted(
            os.path.join(path, name)
            for name in os.listdir(path)
            if name.endswith((".json", ".jsonl", ".json.gz", ".jsonl.gz", ".arrow"))
        )
    if not files:
        sys.exit(f"no .json, .json.gz or .arrow files in {path}")
    return ("arrow" if files[0].endswith(".arrow") else "json"), files


def _dataset(path: str, tokenizer: Any, seq_len: int) -> Any:
    import datasets

    kind, files = _data_files(path)
    raw = datasets.load_dataset(kind, data_files=files, split="train")

    def tokenize(batch: dict[str, list[str]]) -> dict[str, Any]:
        return tokenizer(batch["text"], truncation=True, max_length=seq_len)

    tokenized = raw.map(tokenize, batched=True, remove_columns=raw.column_names)
    return tokenized.filter(lambda row: len(row["input_ids"]) > 1)


def _param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if name.endswith(NO_DECAY) else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def train(recipe: dict[str, Any], ds_config: dict[str, Any]) -> None:
    import deepspeed
    import torch
    import transformers
    from torch.utils.data import DataLoader, DistributedSampler

    model_cfg, exp = recipe["model"], recipe["exp_manager"]
    token = model_cfg.get("hf_access_token") or os.environ.get("HF_TOKEN")
    source = model_cfg["hf_model_name_or_path"]
    deepspeed.init_distributed()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))

    tokenizer = transformers.AutoTokenizer.from_pretrained(source, token=token)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model_cfg.get("do_finetune", True):
        model = transformers.AutoModelForCausalLM.from_pretrained(
            source, token=token, torch_dtype=torch.bfloat16, low_cpu_mem_usage=True
        )
    else:
        config = transformers.AutoConfig.from_pretrained(source, token=token)
        model = transformers.AutoModelForCausalLM.from_config(config)
    if model_cfg.get("gradient_checkpointing"):
        model.gradient_checkpointing_enable()

    engine, _, _, _ = deepspeed.initialize(
        model=model,
        model_parameters=_param_groups(model, model_cfg["optim"]["weight_decay"]),
        config=ds_config,
    )
    data = _dataset(model_cfg["data"]["train_dir"], tokenizer, model_cfg["max_context_width"])
    collate = transformers.DataCollatorForLanguageModeling(tokenizer, mlm=False)
    loader = DataLoader(
        data,
        batch_size=ds_config["train_micro_batch_size_per_gpu"],
        sampler=DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True),
        collate_fn=collate,
    )

    max_steps = recipe["trainer"]["max_steps"]
    log_every = recipe["trainer"]["log_every_n_steps"]
    save_every = exp.get("save_every_n_steps") or 0
    ckpt_dir = exp["checkpoint_dir"]
    step = micro_step = epoch = 0
    while step < max_steps:
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            batch = {k: v.to(engine.device) for k, v in batch.items()}
            loss = engine(**batch).loss
            engine.backward(loss)
            engine.step()
            micro_step += 1
            if micro_step % engine.gradient_accumulation_steps():
                continue
            step += 1
            if rank == 0 and step % log_every == 0:
                print(f"step {step}/{max_steps} loss {loss.item():.4f}", flush=True)
            if save_every and step % save_every == 0:
                engine.save_checkpoint(ckpt_dir, tag=f"step{step}")
            if step >= max_steps:
                break
        epoch += 1

    if exp.get("checkpoint_format", "hf") == "zero":
        engine.save_checkpoint(ckpt_dir, tag="final")
    else:
        final = os.path.join(ckpt_dir, "final")
        engine.save_16bit_model(final)  # gathers ZeRO-3 shards (needs the 16-bit gather flag)
        if rank == 0:
            model.config.save_pretrained(final)
            tokenizer.save_pretrained(final)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-path", required=True)
    parser.add_argument("--config-name", required=True)
    parser.add_argument("--check", action="store_true", help="check the configs and exit")
    args = parser.parse_args(argv)
    recipe, ds_config = load(args.config_path, args.config_name)
    if args.check:
        print(
            f"ok: ZeRO-{ds_config['zero_optimization']['stage']}, train batch "
            f"{ds_config['train_batch_size']}, model {recipe['model']['hf_model_name_or_path']}"
        )
        return
    train(recipe, ds_config)


if __name__ == "__main__":
    main()
