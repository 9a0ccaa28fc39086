"""MiniLLaVA in PyTorch: LLaVA-1.5's architecture at small scale.

Module names follow llava-hf (transformers < 4.52) so that state_dict() keys are the
checkpoint's tensor names: CLIP vision tower (CLS token, pre-LN blocks, quick_gelu),
2-layer GELU projector fed by vision layer -2 without CLS, LLaMA decoder (RMSNorm,
SwiGLU, rotary embeddings in the rotate-half convention).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_CONFIG = {
    "vision": {"hidden_size": 192, "intermediate_size": 768, "num_hidden_layers": 4, "num_attention_heads": 4,
               "image_size": 168, "patch_size": 14, "layer_norm_eps": 1e-5},
    "text": {"hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4, "num_attention_heads": 4,
             "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 1024},
    "vocab_size": 704,  # tokenizer pieces + <image> + <pad>, rounded up to a multiple of 64
    "image_token_index": 640,
    "pad_token_id": 641,
}

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


class Attn(nn.Module):
    def __init__(self, d, heads, bias, out_name):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(d, d, bias=bias)
        self.k_proj = nn.Linear(d, d, bias=bias)
        self.v_proj = nn.Linear(d, d, bias=bias)
        setattr(self, out_name, nn.Linear(d, d, bias=bias))
        self.out_name = out_name
        self.keep_probs = False  # training only: keep the attention probabilities (self.probs) and head outputs for losses on them

    def forward(self, x, mask=None, rope=None):
        b, n, d = x.shape
        h = self.heads
        q = self.q_proj(x).view(b, n, h, d // h).transpose(1, 2)
        k = self.k_proj(x).view(b, n, h, d // h).transpose(1, 2)
        v = self.v_proj(x).view(b, n, h, d // h).transpose(1, 2)
        if rope is not None:
            q, k = apply_rope(q, rope), apply_rope(k, rope)
        q, k, v = (t.reshape(b * h, n, d // h) for t in (q, k, v))
        kt = k.transpose(1, 2)
        scale = 1.0 / math.sqrt(d // h)
        # One fused op for the [B*H, n, n] scores: large temporaries are what cost most on CPU.
        if mask is not None:
            s = torch.baddbmm(mask.expand(b * h, n, n), q, kt, alpha=scale)
        else:
            s = torch.bmm(q, kt) * scale
        probs = s.softmax(-1)
        o = torch.bmm(probs, v).view(b, h, n, d // h)
        if self.keep_probs:
            self.probs = probs.view(b, h, n, n)
            self.heads_out = o  # [B, H, n, D/H]: what each head passes on, before o_proj
        o = o.transpose(1, 2).reshape(b, n, d)
        return getattr(self, self.out_name)(o)


def rope_tables(n, head_dim, theta):
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    f = torch.outer(torch.arange(n, dtype=torch.float32), inv)
    emb = torch.cat([f, f], -1)
    return emb.cos(), emb.sin()


def apply_rope(x, rope):
    cos, sin = rope
    n = x.shape[-2]
    h = x.shape[-1] // 2
    rot = torch.cat([-x[..., h:], x[..., :h]], -1)
    return x * cos[:n] + rot * sin[:n]


class ClipMlp(nn.Module):
    def __init__(self, d, i):
        super().__init__()
        self.fc1 = nn.Linear(d, i)
        self.fc2 = nn.Linear(i, d)

    def forward(self, x):
        return self.fc2(quick_gelu(self.fc1(x)))


class ClipLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, eps = c["hidden_size"], c["layer_norm_eps"]
        self.self_attn = Attn(d, c["num_attention_heads"], True, "out_proj")
        self.layer_norm1 = nn.LayerNorm(d, eps=eps)
        self.mlp = ClipMlp(d, c["intermediate_size"])
        self.layer_norm2 = nn.LayerNorm(d, eps=eps)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class ClipEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, p = c["hidden_size"], c["patch_size"]
        n = (c["image_size"] // p) ** 2 + 1
        self.class_embedding = nn.Parameter(torch.randn(d) * 0.02)
        self.patch_embedding = nn.Conv2d(3, d, p, stride=p, bias=False)
        self.position_embedding = nn.Embedding(n, d)

    def forward(self, pixels):
        x = self.patch_embedding(pixels).flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        return torch.cat([cls, x], 1) + self.position_embedding.weight


class ClipEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layers = nn.ModuleList([ClipLayer(c) for _ in range(c["num_hidden_layers"])])


class ClipVisionModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["hidden_size"]
        self.embeddings = ClipEmbeddings(c)
        self.pre_layrnorm = nn.LayerNorm(d, eps=c["layer_norm_eps"])  # sic, as in transformers
        self.encoder = ClipEncoder(c)
        self.post_layernorm = nn.LayerNorm(d, eps=c["layer_norm_eps"])  # exported; LLaVA never uses it

    def features(self, pixels, with_cls=False):
        """Hidden state of layer -2 (LLaVA's vision_feature_layer), CLS dropped (with_cls:
        also the CLS row, for the warm-up's image-level objective). The last layer does not
        influence it and is never run."""
        x = self.pre_layrnorm(self.embeddings(pixels))
        for layer in self.encoder.layers[:-1]:
            x = layer(x)
        return (x[:, 1:], x[:, 0]) if with_cls else x[:, 1:]


class VisionTower(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.vision_model = ClipVisionModel(c)


class Projector(nn.Module):
    def __init__(self, dv, dt):
        super().__init__()
        self.linear_1 = nn.Linear(dv, dt)
        self.linear_2 = nn.Linear(dt, dt)

    def forward(self, x):
        return self.linear_2(F.gelu(self.linear_1(x)))


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LlamaMlp(nn.Module):
    def __init__(self, d, i):
        super().__init__()
        self.gate_proj = nn.Linear(d, i, bias=False)
        self.up_proj = nn.Linear(d, i, bias=False)
        self.down_proj = nn.Linear(i, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["hidden_size"]
        self.self_attn = Attn(d, c["num_attention_heads"], False, "o_proj")
        self.mlp = LlamaMlp(d, c["intermediate_size"])
        self.input_layernorm = RMSNorm(d, c["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(d, c["rms_norm_eps"])

    def forward(self, x, mask, rope):
        x = x + self.self_attn(self.input_layernorm(x), mask, rope)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, c, vocab):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, c["hidden_size"])
        self.layers = nn.ModuleList([LlamaLayer(c) for _ in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])


class LanguageModel(nn.Module):
    def __init__(self, c, vocab):
        super().__init__()
        self.model = LlamaModel(c, vocab)
        self.lm_head = nn.Linear(c["hidden_size"], vocab, bias=False)


class MiniLlava(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.vision_tower = VisionTower(cfg["vision"])
        self.multi_modal_projector = Projector(cfg["vision"]["hidden_size"], cfg["text"]["hidden_size"])
        self.language_model = LanguageModel(cfg["text"], cfg["vocab_size"])
        t = cfg["text"]
        cos, sin = rope_tables(t["max_position_embeddings"], t["hidden_size"] // t["num_attention_heads"],
                               t["rope_theta"])
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)

    def embed(self, ids, pixels, features=None):
        """Token embeddings with each <image> id replaced by the 144 projected patch
        features of that sample's image (one image per sequence). `features` are
        precomputed vision features (layer -2, no CLS) when given."""
        if features is None:
            features = self.vision_tower.vision_model.features(pixels)
        feats = self.multi_modal_projector(features)
        emb = self.language_model.model.embed_tokens
        rows = []
        for b in range(ids.shape[0]):
            seq = ids[b]
            pos = (seq == self.cfg["image_token_index"]).nonzero().flatten()
            assert pos.numel() == 1, "exactly one <image> per sequence"
            p = int(pos[0])
            rows.append(torch.cat([emb(seq[:p]), feats[b], emb(seq[p + 1:])], 0))
        return torch.stack(rows)

    def forward(self, ids, pixels, features=None):
        """Logits [B, L, V] for ids [B, T] (L = T + patches - 1); right padding is harmless under the causal mask."""
        lm = self.language_model
        return lm.lm_head(self.hidden(ids, pixels, features))

    def hidden(self, ids, pixels, features=None):
        """Final normed hidden states [B, L, D] (before lm_head)."""
        x = self.embed(ids, pixels, features)
        n = x.shape[1]
        mask = torch.full((n, n), float("-inf")).triu(1)
        rope = (self.rope_cos, self.rope_sin)
        lm = self.language_model
        for layer in lm.model.layers:
            x = layer(x, mask, rope)
        return lm.model.norm(x)


def pixels_from_image(img):
    """CLIPImageProcessor on a 168x168 RGB image (resize and crop are the identity):
    x / 255 then (x - mean) / std, CHW float32."""
    import numpy as np
    a = np.asarray(img.convert("RGB"), dtype=np.float32) * np.float32(1 / 255)
    a = (a - np.array(CLIP_MEAN, dtype=np.float32)) / np.array(CLIP_STD, dtype=np.float32)
    return torch.from_numpy(a.transpose(2, 0, 1).copy())
