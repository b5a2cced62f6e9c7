"""A tiny random causal LM, its own tokenizer and tiny datasets, built on the spot (no hub).

The model is a Llama with 2 layers and hidden size 64; the tokenizer is a byte-level BPE
trained with `tokenizers` on the same sentences the datasets hold, so a few optimizer steps
visibly lower the loss.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

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
