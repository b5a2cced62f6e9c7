"""A tiny random causal LM, its own tokenizer and tiny datasets, built on the spot (no hub).

The model is a Llama with 2 layers and hidden size 64; the tokenizer is a byte-level BPE
trained with `tokenizers` on the same sentences the datasets hold, so a few optimizer steps
visibly lower the loss. `build_gpt_oss_mxfp4` adds a tiny GPT-OSS stored in MXFP4, as the hub's
GPT-OSS checkpoints are.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

WORDS = ("the", "cat", "dog", "bird", "sat", "ran", "on", "under")
WORDS += ("a", "mat", "box", "red", "blue", "green", "big", "small")
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


@dataclass(frozen=True)
class TinyLM:
    model: Path  # save_pretrained folder: config, weights, tokenizer
    text: Path  # SFT rows {"text"}
    chat: Path  # SFT rows {"messages"} (conversational)
    preference: Path  # DPO rows {"prompt", "chosen", "rejected"}
    prompts: Path  # GRPO rows {"prompt", "answer"}
    chat_template: Path


def _sentences(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(WORDS[:8]) + " " + rng.choice(WORDS[8:]) for _ in range(3))
        for _ in range(count)
    ]


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def build(root: Path) -> TinyLM:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    root.mkdir(parents=True, exist_ok=True)
    sentences = _sentences(256)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    specials = ["<s>", "</s>", "<pad>"]
    bpe.train_from_iterator(
        [*sentences, "user", "assistant"],
        trainers.BpeTrainer(
            vocab_size=320,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    model_dir = root / "model"
    tokenizer.save_pretrained(model_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(model_dir)

    template = root / "chat_template.jinja"
    template.write_text(CHAT_TEMPLATE)
    halves = [s.split(" ", 2) for s in sentences]
    return TinyLM(
        model=model_dir,
        text=_write_jsonl(root / "text.jsonl", [{"text": s} for s in sentences]),
        chat=_write_jsonl(
            root / "chat.jsonl",
            [
                {
                    "messages": [
                        {"role": "user", "content": " ".join(h[:2])},
                        {"role": "assistant", "content": h[2]},
                    ]
                }
                for h in halves
            ],
        ),
        preference=_write_jsonl(
            root / "preference.jsonl",
            [
                {"prompt": " ".join(h[:2]), "chosen": " red box", "rejected": " blue dog"}
                for h in halves[:64]
            ],
        ),
        prompts=_write_jsonl(
            root / "prompts.jsonl",
            [{"prompt": " ".join(h[:2]), "answer": "red box"} for h in halves[:64]],
        ),
        chat_template=template,
    )


MXFP4_BLOCK = 32  # values per MXFP4 block, sharing one power-of-two scale
FP4_MAGNITUDES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)  # e2m1 codes 0-7; bit 3 is the sign


def pack_mxfp4(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A fused expert weight [experts, in, out] in the hub's GPT-OSS storage: `blocks`
    [experts, out, in/32, 16] of uint8 (two e2m1 codes a byte, the even element in the low
    nibble) and `scales` [experts, out, in/32] of uint8 (e8m0: exponent + 127)."""
    import torch

    rows = weight.float().transpose(1, 2)
    groups = rows.reshape(*rows.shape[:-1], -1, MXFP4_BLOCK)
    largest = groups.abs().amax(-1).clamp(min=2.0**-100)
    exponent = torch.ceil(torch.log2(largest / FP4_MAGNITUDES[-1]))
    scaled = groups / torch.exp2(exponent)[..., None]
    nearest = (scaled.abs()[..., None] - torch.tensor(FP4_MAGNITUDES)).abs().argmin(-1)
    codes = (nearest | ((scaled < 0).long() << 3)).to(torch.uint8)
    return codes[..., 0::2] | (codes[..., 1::2] << 4), (exponent + 127).to(torch.uint8)


def build_gpt_oss_mxfp4(root: Path, tokenizer_from: Path) -> Path:
    """A tiny random GPT-OSS (2 layers, 4 experts) saved as hub GPT-OSS checkpoints are: bf16
    weights except the experts' `*_blocks`/`*_scales` MXFP4 tensors, and `quantization_config`
    {"quant_method": "mxfp4"} in config.json. The tokenizer is copied from `tokenizer_from`."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer, GptOssConfig, GptOssForCausalLM

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_from)
    folder = root / "gpt-oss-mxfp4"
    tokenizer.save_pretrained(folder)
    config = GptOssConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=96,  # unlike hidden_size, so a transposed expert would not fit
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        num_local_experts=4,
        num_experts_per_tok=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    GptOssForCausalLM(config).to(torch.bfloat16).save_pretrained(folder)
    weights = folder / "model.safetensors"
    stored: dict[str, torch.Tensor] = {}
    for name, tensor in load_file(weights).items():
        if name.endswith(("experts.gate_up_proj", "experts.down_proj")):
            stored[f"{name}_blocks"], stored[f"{name}_scales"] = pack_mxfp4(tensor)
        else:
            stored[name] = tensor
    save_file(stored, weights, metadata={"format": "pt"})
    config_file = folder / "config.json"
    saved = json.loads(config_file.read_text())
    saved["quantization_config"] = {
        "quant_method": "mxfp4",
        "modules_to_not_convert": [
            "model.layers.*.self_attn",
            "model.layers.*.mlp.router",
            "model.embed_tokens",
            "lm_head",
        ],
    }
    config_file.write_text(json.dumps(saved, indent=2))
    return folder
