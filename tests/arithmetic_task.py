"""A tiny verifiable task for GRPO, built on the spot: one-digit sums (`3+4=` -> `7`), a
character-level tokenizer of digits and signs, and a random Llama small enough to learn the
sums from its own rewarded samples in a few dozen CPU steps."""

from __future__ import annotations

import json
import random
from pathlib import Path

CHARS = "0123456789+=#"


def build(root: Path, problems: int = 4, seed: int = 0) -> tuple[Path, Path]:
    """(model folder, prompts.jsonl with "prompt" and "answer" columns)."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    root.mkdir(parents=True, exist_ok=True)
    specials = ["<s>", "</s>", "<pad>"]
    vocab = {token: index for index, token in enumerate(specials + list(CHARS))}
    chars = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    chars.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=chars, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    model_dir = root / "model"
    tokenizer.save_pretrained(model_dir)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=32,
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["</s>"],
        pad_token_id=vocab["<pad>"],
    )
    LlamaForCausalLM(config).save_pretrained(model_dir)
    rng = random.Random(seed)
    pairs = [(a, b) for a in range(5) for b in range(5)]
    chosen = rng.sample(pairs, problems)
    rows = [{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a, b in chosen] * 16
    prompts = root / "sums.jsonl"
    prompts.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return model_dir, prompts
