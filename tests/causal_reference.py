"""A slow, obviously-correct reference for self-attention attribution, for causal LMs and encoder classifiers alike.

For each layer l and each integration point α_k, one forward in which layer l's post-softmax attention probabilities
A_l (b, h, q, k) are replaced by the leaf X = α_k·A_l, then autograd for ∂F/∂X at that point:

    Attr_l = A_l ⊙ Σ_k w_k ∂F/∂X |_{X = α_k A_l}        (L, H, n, n) per example, accumulated in float64

The attention is computed by `reference_attention`, a plain eager function registered with transformers'
`AttentionInterface` (and `eager_mask` with `AttentionMaskInterface`, without which a custom implementation gets no
mask at all): keys/values repeated to the query heads (grouped-query attention, the order of transformers'
`repeat_kv`), `scaling`, tanh soft-capping, the mask the model passes (its causal and sliding-window pattern checked
independently), attention sinks (`s_aux`), no dropout. The model is deep-copied and run in float64 with `use_cache=False`.
Nothing here is fast or shared with `attattr`'s kernel: it is what the kernel is tested against.
"""
from __future__ import annotations
import copy
from contextlib import contextmanager
from dataclasses import dataclass, field
import torch
from torch import nn
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.masking_utils import eager_mask
from attattr.attribution import quadrature

REFERENCE_IMPL = "attattr_causal_reference"  # name of `reference_attention` in transformers' attention registries
# (not bench/reference.py's "attattr_reference": the registries are global, and pytest imports both)
REFERENCE_DTYPE = torch.float64  # dtype the reference runs the model copy in
OUTPUTS = ("log_prob", "prob", "logit")  # which output of the target token/class is F
MASKED = -1e4  # an additive mask entry at or below this blocks a key (transformers' masks use the dtype's minimum)


@dataclass
class _Replace:
    "What `reference_attention` does in the current forward."
    layer:int|None=None # layer whose probabilities are replaced by `alpha`·A (None: none)
    alpha:float=1.0 # the scale α of the integration point
    calls:int=0 # attention calls so far in this forward = index of the next layer
    probs:list=field(default_factory=list) # (b, h, q, k) probabilities of every layer, detached
    point:torch.Tensor|None=None # the replaced layer's leaf X = α·A (b, h, q, k), requiring grad
    masks:list=field(default_factory=list) # (b, 1, q, k) additive mask of every layer, or None

_STATE = _Replace()  # one forward at a time: the reference is not thread-safe


@contextmanager
def replacing(layer:int|None=None, alpha:float=1.0):
    "Within the block, forwards of a reference model replace layer `layer`'s probabilities A by `alpha`·A; the state is yielded."
    global _STATE
    old, _STATE = _STATE, _Replace(layer=layer, alpha=alpha)
    try: yield _STATE
    finally: _STATE = old


def check_mask(mask:torch.Tensor, # (b, 1, q, k) additive mask passed to the attention function
               sliding_window:int|None=None, # the window the layer says it has, or None
              ):
    "Raise AssertionError unless `mask` blocks every key after the query (causal) and, with a window, every key `sliding_window` or more back."
    q, k = mask.shape[-2:]
    qi, ki = torch.arange(q)[:, None] + (k - q), torch.arange(k)[None]  # absolute positions (no cache: k = q)
    allowed = (mask > MASKED).cpu()  # (b, 1, q, k)
    expect = ki <= qi
    if sliding_window is not None: expect = expect & (ki > qi - sliding_window)
    if bool((allowed & ~expect).any()):
        raise AssertionError(f"the mask lets a query see a key it must not (causal, window {sliding_window})")


def reference_attention(module:nn.Module, # the attention module calling
                        query:torch.Tensor, # (b, h, q, d)
                        key:torch.Tensor, # (b, h_kv, k, d): h_kv ≤ h key/value heads, not repeated
                        value:torch.Tensor, # (b, h_kv, k, d)
                        attention_mask:torch.Tensor|None, # (b, 1, q, k): additive float, or bool (True = attend)
                        scaling:float|None=None, # score scale, default d^-½
                        dropout:float=0.0, # ignored: the reference runs in eval mode only
                        softcap:float|None=None, # tanh soft-cap of the scaled scores (gemma2)
                        sliding_window:int|None=None, # the layer's window (checked against the mask)
                        s_aux:torch.Tensor|None=None, # (h,) attention-sink logits (gpt-oss): a key column dropped after softmax
                        **kwargs):
    "Plain eager attention that records every layer's probabilities and replaces one layer's A by α·A (see `replacing`)."
    if module.training: raise AssertionError("the reference runs in eval mode only (dropout off)")
    st = _STATE
    layer = st.calls; st.calls += 1
    if isinstance(getattr(module, 'layer_idx', None), int) and module.layer_idx != layer:
        raise AssertionError(f"attention call {layer} came from layer {module.layer_idx}: calls are not one per layer in order")
    h, h_kv = query.shape[1], key.shape[1]
    if h % h_kv: raise AssertionError(f"{h} query heads do not share {h_kv} key/value heads evenly")
    key, value = key.repeat_interleave(h // h_kv, 1), value.repeat_interleave(h // h_kv, 1)  # (b, h, k, d): query head j
    # reads key/value head j // (h / h_kv), as transformers' `repeat_kv`
    s = torch.matmul(query, key.transpose(2, 3)) * (query.shape[-1] ** -0.5 if scaling is None else scaling)  # (b, h, q, k)
    if softcap is not None: s = torch.tanh(s / softcap) * softcap
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            attention_mask = torch.zeros_like(attention_mask, dtype=s.dtype).masked_fill(~attention_mask, torch.finfo(s.dtype).min)
        if getattr(module, 'is_causal', False): check_mask(attention_mask, sliding_window)
        s = s + attention_mask
    elif getattr(module, 'is_causal', False):
        raise AssertionError(f"a causal attention module ({type(module).__name__}) got no mask")
    st.masks.append(attention_mask)
    if s_aux is not None:  # a sink column per head, in the softmax's denominator only
        sink = s_aux.to(s).view(1, -1, 1, 1).expand(*s.shape[:-1], 1)  # (b, h, q, 1)
        p = torch.softmax(torch.cat([s, sink], -1), -1)[..., :-1]
    else: p = torch.softmax(s, -1)  # (b, h, q, k)
    st.probs.append(p.detach())
    if layer == st.layer:
        st.point = (st.alpha * p.detach()).requires_grad_(True)  # the leaf X = α·A
        p = st.point
    return torch.matmul(p, value).transpose(1, 2).contiguous(), p  # (b, q, h, d), (b, h, q, k)

AttentionInterface.register(REFERENCE_IMPL, reference_attention)
AttentionMaskInterface.register(REFERENCE_IMPL, eager_mask)


def reference_model(model:nn.Module, # any transformers model whose attention goes through AttentionInterface
                    dtype:torch.dtype=REFERENCE_DTYPE, # dtype of the copy
                   ) -> nn.Module:
    "A deep copy of `model` in `dtype`, eval mode, frozen, on the reference attention."
    ref = copy.deepcopy(model).to(dtype).eval().requires_grad_(False)
    ref.set_attn_implementation(REFERENCE_IMPL)
    return ref


def _inputs(inputs) -> dict:
    "One example's model inputs as (1, n) tensors."
    x = {k: torch.as_tensor(v) for k, v in dict(inputs).items()}
    x = {k: (v[None] if v.dim() == 1 else v) for k, v in x.items()}
    if x['input_ids'].shape[0] != 1: raise ValueError("the reference takes one example at a time")
    return x


def forward(ref:nn.Module, # from `reference_model`
            inputs:dict, # one example: `input_ids` (n,) or (1, n), optional `attention_mask`, `position_ids`
            layer:int|None=None, alpha:float=1.0, # replace this layer's A by α·A
           ):
    "Logits of a reference forward (1, n, V) or (1, c), and the replacement state (probabilities, masks, the leaf)."
    dev = next(ref.parameters()).device
    x = {k: v.to(dev) for k, v in _inputs(inputs).items()}
    with replacing(layer, alpha) as st:
        out = ref(**x, use_cache=False).logits
    if layer is not None and st.point is None: raise AssertionError(f"layer {layer} was never called")
    return out, st


def objective(logits:torch.Tensor, # (1, n, V) of a causal LM, or (1, c) of a classifier
              target:int, # token id or class whose output is F
              output:str="log_prob", # one of `OUTPUTS`
              contrast:int|None=None, # F = out(target) − out(contrast) when given
              position:int=-1, # query position read from LM logits
             ) -> torch.Tensor:
    "The scalar F: the target's log-prob, prob or logit at `position` (minus the contrast's)."
    z = logits[0, position] if logits.dim() == 3 else logits[0]  # (V,) or (c,)
    if output == "log_prob": o = z.log_softmax(-1)
    elif output == "prob": o = z.softmax(-1)
    elif output == "logit": o = z
    else: raise ValueError(f"unknown output {output!r}: expected one of {', '.join(OUTPUTS)}")
    return o[target] - (0 if contrast is None else o[contrast])


@dataclass
class Reference:
    "The reference attribution of one example."
    attributions:torch.Tensor # (L, H, n, n) float64: query i attending to key j, per layer and query head
    attentions:torch.Tensor # (L, H, n, n) float64 probabilities A of the plain forward
    logits:torch.Tensor # (n, V) or (c,) float64 logits of the plain forward
    target:int # attributed token id / class
    position:int # query position F reads (LM logits)
    f_input:float # F(A)
    f_baseline:torch.Tensor # (L,) F with layer l's probabilities set to 0
    delta:torch.Tensor # (L,) completeness residual Σ Attr_l − (F(A) − F(0))
    layers:list # attributed layers (the first axis)


def graded_quadrature(n_steps:int=8, # points
                      power:float=4.0, # α = u^power: points crowd towards α = 0
                      method:str="gauss_legendre", # rule in u, `attattr.attribution.quadrature`
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    "Points α_k and weights w_k of ∫₀¹ f(α) dα = ∫₀¹ f(u^p) p u^(p−1) du: for F that changes steeply near α = 0 (post-norm layers)."
    u, w = quadrature(method, n_steps)
    return u ** power, w * power * u ** (power - 1)


def last_position(inputs) -> int:
    "The last position whose `attention_mask` is 1 (the next-token position of a right- or left-padded prompt)."
    x = _inputs(inputs)
    m = x.get('attention_mask', torch.ones_like(x['input_ids']))[0]
    return int(m.nonzero()[-1])


def reference_attribution(model:nn.Module, # a causal LM, a `*ForSequenceClassification` or an encoder classifier
                          inputs:dict, # one example: `input_ids`, optional `attention_mask`, `position_ids`
                          target:int|None=None, # token id / class; default the top one at `position`
                          output:str="log_prob", # F: one of `OUTPUTS`
                          contrast:int|None=None, # F = out(target) − out(contrast)
                          position:int|None=None, # LM query position; default `last_position(inputs)`
                          n_steps:int=8, method:str="gauss_legendre", # integration points, `attattr.attribution.quadrature`
                          layers:list|None=None, # layers to attribute (default all)
                          dtype:torch.dtype=REFERENCE_DTYPE,
                          points:tuple|None=None, # (alphas, weights) (m,) each, instead of `method`/`n_steps`
                         ) -> Reference:
    "Attention attribution of every layer and query head, one layer and one integration point at a time, by autograd."
    ref = reference_model(model, dtype)
    pos = last_position(inputs) if position is None else position
    with torch.no_grad(): logits, st = forward(ref, inputs)
    A = torch.stack([p[0] for p in st.probs])  # (L, H, n, n)
    if target is None: target = int((logits[0, pos] if logits.dim() == 3 else logits[0]).argmax())
    F = lambda z: objective(z, target, output, contrast, pos)
    f_input = float(F(logits))
    layers = list(range(len(st.probs))) if layers is None else list(layers)
    alphas, weights = quadrature(method, n_steps) if points is None else points
    attrs, f0 = torch.zeros(len(layers), *A.shape[1:], dtype=torch.float64), torch.zeros(len(layers), dtype=torch.float64)
    for t, l in enumerate(layers):
        grad = torch.zeros(A.shape[1:], dtype=torch.float64)  # (H, n, n): Σ_k w_k ∂F/∂X at X = α_k A_l
        for a, w in zip(alphas.tolist(), weights.tolist()):
            with torch.enable_grad():
                out, pt = forward(ref, inputs, l, a)
                g, = torch.autograd.grad(F(out), pt.point)  # (1, H, n, n)
            grad += w * g[0].double().cpu()
        with torch.no_grad(): f0[t] = float(F(forward(ref, inputs, l, 0.0)[0]))
        attrs[t] = A[l].double().cpu() * grad
    delta = attrs.sum((1, 2, 3)) - (f_input - f0)
    z = logits[0].double().cpu()
    return Reference(attrs, A.double().cpu(), z, target, pos, f_input, f0, delta, layers)
