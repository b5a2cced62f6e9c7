"""What MFU needs, from a training-adapter, NxD Training or NeMo recipe: tokens per step and
the model's shape. The per-node watcher adds them to the step lines it makes from those stacks'
progress lines (the open entries measure both themselves)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hyperpod_launcher import stacks

# Recipe keys per figure, in the order looked up (adapter, NxD Training / NeMo spellings).
_KEYS = {
    "layers": ("num_hidden_layers", "num_layers"),
    "hidden": ("hidden_size",),
    "intermediate": ("intermediate_size", "ffn_hidden_size"),
    "heads": ("num_attention_heads",),
    "kv_heads": ("num_key_value_heads", "num_query_groups"),
    "vocab": ("vocab_size",),
    "seq": ("max_context_width", "encoder_seq_length", "seq_length"),
}


def _first(model: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = model.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def params_without_input_embedding(
    shape: Mapping[str, int | None], gated: bool, experts: int = 1, experts_per_token: int = 1
) -> int:
    """Parameters a token passes through (the input embedding is a lookup, no FLOPs): the
    layers' attention, MLP (the routed experts only, plus the router) and norms, the final
    norm and the untied LM head (where the vocabulary size is known)."""
    layers, hidden = shape["layers"] or 0, shape["hidden"] or 0
    heads, kv_heads = shape["heads"] or 1, shape["kv_heads"] or shape["heads"] or 1
    head_dim = hidden // heads
    attention = 2 * hidden * hidden + 2 * hidden * kv_heads * head_dim
    mlp = (3 if gated else 2) * hidden * (shape["intermediate"] or 0) * experts_per_token
    router = hidden * experts if experts > 1 else 0
    layer = attention + mlp + router + 2 * hidden
    return layers * layer + hidden + hidden * (shape["vocab"] or 0)


def _tokens_per_step(model: Mapping[str, Any], seq: int, accelerators: int) -> int | None:
    global_batch = _first(model, ("global_batch_size",))
    if global_batch is None:  # the adapter: a micro-batch per data-parallel rank, no accumulation
        micro = _first(model, ("train_batch_size",))
        split = (_first(model, ("tensor_model_parallel_degree",)) or 1) * (
            _first(model, ("context_parallel_degree",)) or 1
        )
        if micro is None or not accelerators or accelerators % split:
            return None
        global_batch = micro * accelerators // split
    return global_batch * seq


def mfu_inputs(recipe: Mapping[str, Any], accelerators: int) -> dict[str, Any]:
    """{"model": ..., "tokens_per_step": ..., "note": ...} for the watcher; {"note": why}
    where the recipe does not state enough; {} for stacks whose lines carry their own."""
    run = recipe.get("run")
    stack = stacks.named_by(run.get("model_type")) if isinstance(run, Mapping) else None
    gated_mlp = stacks.get(stack).gated_mlp if stack else None  # unset: lines carry their own
    model = recipe.get("model")
    if gated_mlp is None or not isinstance(model, Mapping):
        return {}
    shape = {figure: _first(model, names) for figure, names in _KEYS.items()}
    required = ("layers", "hidden", "intermediate", "heads", "seq")
    missing = [f"model.{_KEYS[figure][0]}" for figure in required if shape[figure] is None]
    if missing:
        return {"note": f"no MFU: the recipe states no {', '.join(missing)}"}
    gated = gated_mlp(model)
    if gated is None:
        kind = model.get("activation") or model.get("model_type") or "unstated"
        return {"note": f"no MFU: the MLP layout of model type/activation {kind!r} is unknown"}
    tokens = _tokens_per_step(model, int(shape["seq"] or 0), accelerators)
    if tokens is None:
        return {"note": "no MFU: the recipe states no model.global_batch_size"}
    experts = _first(model, ("num_local_experts", "num_experts")) or 1
    per_token = _first(model, ("num_experts_per_tok", "moe_router_topk")) or 1
    params = params_without_input_embedding(shape, gated, experts, min(per_token, experts))
    figures: dict[str, Any] = {
        "model": {"params": params, "layers": shape["layers"], "hidden": shape["hidden"],
                  "seq": shape["seq"]},
        "tokens_per_step": tokens,
    }  # fmt: skip
    if shape["vocab"] is None:
        figures["note"] = "LM head not counted in MFU: the recipe states no model.vocab_size"
    return figures
