"""Decoder-only LMs: attattr's attribution against the slow reference and against captum, and its memory at long inputs.

F is the next token's probability at the last position (`output='prob'`, the model's top token), zero baseline,
Gauss–Legendre points. Three sections, each printed as a table:

  reference  attattr vs `tests/causal_reference.reference_attribution` (one layer and one point per forward, float64,
             autograd; full-vocabulary logits at every position, as the tests run it) on the same model, prompt and
             points, timed alternately in one process: time ratio and max relative difference. The column
             "ref32·last" times the same reference in float32 with only the last position's logits (the same
             algorithm without its two handicaps), the fairer speed baseline.
  captum     attattr vs captum's `LayerIntegratedGradients`, the recipe users hand-roll today: an eager attention
             (registered with transformers' `AttentionInterface`) whose post-softmax probabilities pass through an
             `nn.Identity` per layer, and `LayerIntegratedGradients(forward_func, layer=identity_l,
             multiply_by_inputs=True)` called once per layer with `n_steps`, `method='gausslegendre'`. captum takes
             its baselines in input space, so the zero baseline at the probabilities comes from a gate input
             (1 = the model, 0 = every layer's probabilities times 0; LIG interpolates the layer's output between
             them, i.e. α·A). forward_func returns the target's probability from the last position's logits
             (`logits_to_keep=1`, the cheapest form of the recipe). Timed alternately in one process, without the
             completeness delta on either side.
  shortcut   the last layer on the read row alone (`cls_query`: its keys and values from every row, the rest of the layer
             for the last position only) against the layer on every row (`cls_query=False`, `cls_only` still on), on
             a Llama-3.2-1B-shaped model at a quarter of its width (`LLAMA_QUARTER`), 128 and 512 tokens, all layers
             and the last layer alone: CPU time (`time.process_time`) of alternating calls in one process, and the
             max difference.
  memory     one `attribute` call per configuration, each in a fresh subprocess: its time and peak memory
             (`torch.cuda.max_memory_allocated` on a GPU; on the CPU the peak resident size VmHWM, reset after the model
             was built, weights included), at 128 / 512 / 2,048 tokens, for a Qwen2.5-0.5B-shaped and a Llama-3.2-1B-shaped model
             with random weights (their published configs: hidden size, layers, heads, kv heads, intermediate size,
             vocabulary, rope, tied embeddings). On a GPU: bfloat16 weights, attattr's defaults (all layers, 20
             points) and one layer; on the CPU: float32, reduced (see the table's `what` column and bench/RESULTS.md).

Models: `examples/models/induction-2l` (a trained 2-layer Llama-style model, repeated-sequence prompts as in
nbs/22_causal_lm.ipynb) and a Qwen2.5-0.5B-shaped model with fewer layers (random weights).

    python bench/decoders.py --threads 1                              # what bench/RESULTS.md records (CPU)
    python bench/decoders.py --sections reference,captum --threads 1  # the two side-by-side sections only
    python bench/decoders.py --sections memory --device cuda          # the memory section on a GPU (bfloat16)
    python bench/decoders.py --quick                                  # tiny sizes: a smoke test of every section

captum is not a dependency of attattr: `pip install captum==0.9.*` (its dependencies, numpy, matplotlib, tqdm and
packaging, are already there; it does not replace torch). Without it the captum section says so and is skipped.
"""
import argparse, copy, json, os, platform, random, subprocess, sys, time
from pathlib import Path
import torch
from torch import nn
import transformers
from transformers import AttentionInterface, AttentionMaskInterface, AutoConfig, AutoModelForCausalLM
from transformers.masking_utils import eager_mask

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tests'))
from causal_reference import reference_attribution  # the tests' slow reference
from attattr.attribution import POINT_TOKENS, attribute
from attattr.hooks import hook_model, hook_record
from attattr.models import load_model

INDUCTION = ROOT/'examples'/'models'/'induction-2l'
OUTPUT = 'prob'  # F: the target's probability (the paper's, attattr's default)
SECTIONS = ('reference', 'captum', 'memory', 'shortcut')
BIG_LAYERS = 4  # layers of the Qwen2.5-0.5B-shaped model of the side-by-side sections
BIG_TOKENS = dict(reference=64, captum=128)  # its prompt's tokens (random ids) in each section
BIG_STEPS = dict(reference=[2, 8], captum=[4, 8])  # its point counts in each section

# published configs (hidden size, layers, heads, kv heads, intermediate, vocabulary, rope, tied embeddings)
SHAPES = {
    'qwen2.5-0.5b': dict(model_type='qwen2', hidden_size=896, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, intermediate_size=4864, vocab_size=151936, max_position_embeddings=32768,
                         rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False,
                         rope_parameters=dict(rope_type='default', rope_theta=1e6)),
    'llama-3.2-1b': dict(model_type='llama', hidden_size=2048, num_hidden_layers=16, num_attention_heads=32,
                         num_key_value_heads=8, head_dim=64, intermediate_size=8192, vocab_size=128256,
                         max_position_embeddings=131072, rms_norm_eps=1e-5, tie_word_embeddings=True,
                         rope_parameters=dict(rope_type='llama3', rope_theta=500000.0, factor=32.0, low_freq_factor=1.0,
                                              high_freq_factor=4.0, original_max_position_embeddings=8192)),
}
LLAMA_QUARTER = dict(SHAPES['llama-3.2-1b'], hidden_size=512, num_hidden_layers=4, num_attention_heads=8,
                     num_key_value_heads=2, head_dim=64, intermediate_size=2048, vocab_size=8192)  # the shortcut section:
# Llama-3.2-1B's proportions (GQA 4:1, head_dim 64, MLP 4× wide, llama3 RoPE) at a quarter of its width, 4 layers
GPT2_SMALL4 = dict(model_type='gpt2', n_embd=768, n_head=12, n_layer=4, n_positions=1024, vocab_size=50257)  # the shortcut
# section's gpt2: gpt2-small's width, 4 layers (before `HookRecord.expand_read` gpt2 kept no shortcut at all)
SHORTCUT_TOKENS = (128, 512)  # the shortcut section's prompt lengths
SHORTCUT_STEPS = 4  # its integration points
TINY_SHAPE = dict(model_type='qwen2', hidden_size=64, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=96, vocab_size=512, max_position_embeddings=4096, tie_word_embeddings=True,
                  use_sliding_window=False, rope_parameters=dict(rope_type='default', rope_theta=1e6))  # --quick

def rel(a, b) -> float:
    "Max |a − b| relative to max |b|."
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return float((a - b).abs().max() / b.abs().max())

def timed(fn):
    "(seconds, result) of one call."
    t = time.perf_counter(); r = fn(); return time.perf_counter() - t, r

def sync(device):
    if torch.device(device).type == 'cuda': torch.cuda.synchronize()

def machine(threads) -> str:
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor())
    try: import captum; cv = captum.__version__
    except ImportError: cv = 'not installed'
    return (f"{cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, torch {torch.__version__}, "
            f"transformers {transformers.__version__}, captum {cv}, {threads} thread(s), load average {os.getloadavg()[0]:.1f}")

def shaped_model(shape:dict, layers:int|None=None, seed:int=0, dtype=torch.float32, device='cpu'):
    "A random-weight `*ForCausalLM` of `shape` (a SHAPES entry), optionally with fewer layers, in eval mode."
    kw = dict(shape)
    if layers is not None: kw['num_hidden_layers'] = layers
    cfg = AutoConfig.for_model(kw.pop('model_type'), **kw)
    torch.manual_seed(seed)
    with torch.device(device): model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    return model.eval()

def random_ids(n, vocab, seed=0):
    "(n,) random token ids."
    return torch.randint(0, vocab, (n,), generator=torch.Generator().manual_seed(seed))

def induction_prompt(tok, first=8, repeat=5, seed=4):
    "`<bos>` s s[:repeat] with s `first` distinct random tokens: nbs/22_causal_lm.ipynb's prompt (first=8, repeat=5, seed=4)."
    rng = random.Random(seed)
    seq = [f't{i}' for i in rng.sample(range(64), first)]
    return torch.tensor(tok.convert_tokens_to_ids(['<bos>'] + seq + seq[:repeat]))

# ---------------------------------------------------------------------------------------------------------- captum
RECIPE_IMPL = "bench_captum_recipe"  # the recipe's attention in transformers' registries
_GATE = {'gate': None}  # the recipe's gate input of the current forward, (b, 1): 1 = the model, 0 = probabilities × 0

def recipe_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, softcap=None, **kwargs):
    "Eager attention whose probabilities pass through `module.attn_probs` (an `nn.Identity` that captum hooks)."
    h, h_kv = query.shape[1], key.shape[1]
    key, value = key.repeat_interleave(h // h_kv, 1), value.repeat_interleave(h // h_kv, 1)  # (b, h, k, d)
    s = torch.matmul(query, key.transpose(2, 3)) * (query.shape[-1] ** -0.5 if scaling is None else scaling)
    if softcap is not None: s = torch.tanh(s / softcap) * softcap
    if attention_mask is not None: s = s + attention_mask
    p = torch.softmax(s, -1, dtype=torch.float32).to(query.dtype)  # (b, h, q, k)
    if _GATE['gate'] is not None: p = p * _GATE['gate'].to(p).view(-1, 1, 1, 1)
    p = module.attn_probs(p)
    return torch.matmul(p, value).transpose(1, 2).contiguous(), p

AttentionInterface.register(RECIPE_IMPL, recipe_attention)
AttentionMaskInterface.register(RECIPE_IMPL, eager_mask)

def attention_modules(model):
    "The attention modules, in layer order (those with an integer `layer_idx` and a `q_proj`/`c_attn`/`query_key_value`)."
    mods = [m for m in model.modules() if isinstance(getattr(m, 'layer_idx', None), int)
            and any(hasattr(m, a) for a in ('q_proj', 'c_attn', 'query_key_value', 'qkv_proj'))]
    return sorted(mods, key=lambda m: m.layer_idx)

def recipe_model(model):
    "A copy of `model` on the recipe's attention, an `nn.Identity` `attn_probs` in every attention module."
    m = copy.deepcopy(model).eval().requires_grad_(False)
    for a in attention_modules(m): a.attn_probs = nn.Identity()
    m.set_attn_implementation(RECIPE_IMPL)
    return m

def captum_attribution(cm, ids, target, n_steps, internal_batch_size=None):
    "(L, H, n, n): `LayerIntegratedGradients` on each layer's `attn_probs`, zero baseline (the gate), F = prob of `target`."
    from captum.attr import LayerIntegratedGradients
    dev = next(cm.parameters()).device
    def forward_func(gate, input_ids):
        _GATE['gate'] = gate
        try: logits = cm(input_ids=input_ids, logits_to_keep=1, use_cache=False).logits[:, -1]  # (b, V)
        finally: _GATE['gate'] = None
        return logits.float().softmax(-1)[:, target]  # (b,)
    gate, ids = torch.ones(1, 1, device=dev), ids.view(1, -1).to(dev)
    out = []
    for a in attention_modules(cm):
        lig = LayerIntegratedGradients(forward_func, a.attn_probs, multiply_by_inputs=True)
        out.append(lig.attribute(gate, baselines=torch.zeros_like(gate), additional_forward_args=(ids,), n_steps=n_steps,
                                 method='gausslegendre', internal_batch_size=internal_batch_size)[0].detach().float().cpu())
    return torch.stack(out)  # (L, H, n, n)

# ------------------------------------------------------------------------------------------------ side by side
def side_by_side(fns:dict, repeats:int):
    "{name: (best seconds, result)}: the functions called in turn `repeats` times."
    runs = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items(): runs[k].append(timed(f))
    return {k: min(v, key=lambda t: t[0]) for k, v in runs.items()}

def cases(a, section:str):
    "(name, model, [prompts], [point counts], timed calls per method) for a side-by-side section."
    ind, tok = load_model(INDUCTION)
    out = [('induction-2l', ind, [induction_prompt(tok), induction_prompt(tok, 24, 20, seed=1)], [4, 8, 20], a.repeats)]
    if a.quick: big = ('tiny qwen2 4L', shaped_model(TINY_SHAPE), [random_ids(32, TINY_SHAPE['vocab_size'])], [2, 4])
    else:  # Qwen2.5-0.5B's shape with 4 of its 24 layers: 196M parameters, 136M of them the tied embedding
        qwen, V = shaped_model(SHAPES['qwen2.5-0.5b'], layers=BIG_LAYERS), SHAPES['qwen2.5-0.5b']['vocab_size']
        big = (f'qwen2.5-0.5b-shaped {BIG_LAYERS}L', qwen, [random_ids(BIG_TOKENS[section], V)], BIG_STEPS[section])
    return out + [big + (a.big_repeats,)]

def section_reference(a):
    print("\n(reference) attattr vs tests/causal_reference.reference_attribution: same model, prompt, Gauss–Legendre points, "
          "all layers, F = next-token prob,\n  completeness delta on both sides; ref64 = the tests' reference (float64, "
          "full-vocabulary logits at every position), ref32·last = the same in float32 with the last position's logits only")
    print(f"{'model':>24} {'n':>4} {'m':>3} {'ref64 s':>9} {'ref32·last s':>13} {'attattr s':>10} {'vs ref64':>9} "
          f"{'vs ref32·last':>14} {'max rel diff':>13} {'(vs ref32)':>11}")
    for name, model, prompts, steps, repeats in cases(a, 'reference'):
        hm = hook_model(copy.deepcopy(model))
        for ids in prompts:
            n, last = len(ids), torch.tensor([len(ids) - 1])
            tgt = attribute(hm, dict(input_ids=ids), n_steps=1).target
            def fns(m):
                kw = dict(n_steps=m, method='gauss_legendre', output=OUTPUT)
                return {'attattr': lambda: attribute(hm, dict(input_ids=ids), target=tgt, **kw).attributions,
                        'ref64': lambda: reference_attribution(model, dict(input_ids=ids), target=tgt, **kw).attributions,
                        'ref32': lambda: reference_attribution(model, dict(input_ids=ids, logits_to_keep=last), target=tgt,
                                                               position=-1, dtype=torch.float32, **kw).attributions}
            if a.warm: side_by_side(fns(steps[0]), 1)  # untimed: each method once, at the fewest points
            for m in steps:
                r = side_by_side(fns(m), repeats)
                (ta, ra), (t64, r64), (t32, r32) = r['attattr'], r['ref64'], r['ref32']
                print(f"{name:>24} {n:>4} {m:>3} {t64:>9.3f} {t32:>13.3f} {ta:>10.3f} {t64 / ta:>8.1f}× {t32 / ta:>13.1f}× "
                      f"{rel(ra, r64):>13.1e} {rel(ra, r32):>11.1e}", flush=True)

def section_captum(a):
    try: import captum
    except ImportError as e:
        print(f"\n(captum) skipped: captum cannot be imported ({e}); `pip install captum==0.9.*`"); return
    print(f"\n(captum) attattr vs captum {captum.__version__} LayerIntegratedGradients per layer on an identity after the "
          "softmax (zero baseline via a gate input, method='gausslegendre',\n  all points in one forward on both sides as "
          "far as attattr's POINT_TOKENS allows), same model, prompt, points, target; no completeness delta on either side")
    print(f"{'model':>24} {'n':>4} {'m':>3} {'captum s':>9} {'attattr s':>10} {'ratio':>7} {'max rel diff':>13}")
    for name, model, prompts, steps, repeats in cases(a, 'captum'):
        hm, cm = hook_model(copy.deepcopy(model)), recipe_model(model)
        for ids in prompts:
            n = len(ids)
            tgt = attribute(hm, dict(input_ids=ids), n_steps=1).target
            def fns(m):
                return {'attattr': lambda: attribute(hm, dict(input_ids=ids), target=tgt, n_steps=m, method='gauss_legendre',
                                                     output=OUTPUT, return_convergence_delta=False).attributions,
                        'captum': lambda: captum_attribution(cm, ids, tgt, m)}
            if a.warm: side_by_side(fns(steps[0]), 1)  # untimed: each method once, at the fewest points
            for m in steps:
                r = side_by_side(fns(m), repeats)
                (ta, ra), (tc, rc) = r['attattr'], r['captum']
                print(f"{name:>24} {n:>4} {m:>3} {tc:>9.3f} {ta:>10.3f} {tc / ta:>6.1f}× {rel(ra, rc):>13.1e}", flush=True)

# ----------------------------------------------------------------------------------------------------- shortcut
def cpu_side_by_side(fns:dict, repeats:int):
    "{name: (least CPU seconds, result)}: the functions called in turn `repeats` times."
    runs = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t = time.process_time(); r = f(); runs[k].append((time.process_time() - t, r))
    return {k: min(v, key=lambda t: t[0]) for k, v in runs.items()}

def section_shortcut(a):
    print("\n(shortcut) a decoder's last layer on the read row alone (cls_query) vs on every row (cls_query=False, cls_only on): "
          f"CPU seconds, {SHORTCUT_STEPS} Gauss–Legendre points, F = next-token prob")
    print(f"{'model':>24} {'n':>5} {'layers':>7} {'every row s':>12} {'read row s':>11} {'speed-up':>9} {'max rel diff':>13}")
    shapes = [('tiny qwen2 4L', TINY_SHAPE, {})] if a.quick else [('llama-1b-shaped/4 4L', LLAMA_QUARTER, {}),
                                                                 ('gpt2-small-width 4L', GPT2_SMALL4, dict(cls_only=False))]
    for name, shape, before in shapes:
        shortcut_rows(a, name, shape, before)

def shortcut_rows(a, name, shape, before):
    "One model's rows: the read row against every row (`before`: the other shortcuts that model had without it)."
    base = shaped_model(shape)
    on, off = hook_model(copy.deepcopy(base)), hook_model(copy.deepcopy(base), cls_query=False, **before)
    assert on.attattr.cls_query and not off.attattr.cls_query
    for n in ((32, 64) if a.quick else SHORTCUT_TOKENS):
        ids = random_ids(n, shape['vocab_size'])
        tgt = attribute(on, dict(input_ids=ids), n_steps=1, layers=[0]).target
        for layers in (None, [on.config.num_hidden_layers - 1]):
            kw = dict(input_ids=ids)
            fns = {k: (lambda m=m: attribute(m, dict(kw), layers=layers, target=tgt, n_steps=SHORTCUT_STEPS).attributions)
                   for k, m in (('off', off), ('on', on))}
            r = cpu_side_by_side(fns, a.repeats)
            (t0, r0), (t1, r1) = r['off'], r['on']
            what = 'all' if layers is None else f'last'
            print(f"{name:>24} {n:>5} {what:>7} {t0:>12.2f} {t1:>11.2f} "
                  f"{t0 / t1:>8.2f}× {rel(r1, r0):>13.1e}", flush=True)

# ------------------------------------------------------------------------------------------------------- memory
def proc_status(key:str) -> float:
    "A size in /proc/self/status (VmRSS: resident now, VmHWM: its peak), in GiB."
    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith(key + ':')) / 2**20

def reset_peak_rss():
    "Start the process's peak resident size (VmHWM) afresh (a forked child otherwise inherits its parent's peak: ru_maxrss does)."
    with open('/proc/self/clear_refs', 'w') as f: f.write('5')

def measure_one(cfg:dict) -> dict:
    "One configuration, in this (fresh) process: build the model, one warm-up call on 8 tokens, then the measured call."
    dev = torch.device(cfg['device'])
    if cfg.get('threads'): torch.set_num_threads(cfg['threads'])
    shape = TINY_SHAPE if cfg['shape'] == 'tiny' else SHAPES[cfg['shape']]
    dtype = getattr(torch, cfg['dtype'])
    t0 = time.perf_counter()
    model = hook_model(shaped_model(shape, cfg.get('depth'), dtype=dtype, device=dev))
    L = model.config.num_hidden_layers
    build_s = time.perf_counter() - t0
    layers = None if cfg['layers'] == 'all' else [l % L for l in cfg['layers']]
    kw = dict(layers=layers, n_steps=cfg['n_steps'], method='gauss_legendre', output=OUTPUT,
              internal_batch_size=cfg.get('internal_batch_size'), return_convergence_delta=cfg.get('delta', True),
              queries=cfg.get('queries'), return_attentions=cfg.get('attentions', True))
    attribute(model, dict(input_ids=random_ids(8, shape['vocab_size'], 1)), **(kw | dict(n_steps=1)))  # hooks, warm-up
    ids = random_ids(cfg['tokens'], shape['vocab_size'])
    out = dict(cfg, layers_total=L, build_s=round(build_s, 1), params=sum(p.numel() for p in model.parameters()))
    if dev.type == 'cuda':
        torch.cuda.synchronize(); torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats(dev)
        out['before_gib'] = torch.cuda.memory_allocated(dev) / 2**30
    else: reset_peak_rss(); out['before_gib'] = proc_status('VmRSS')
    t = time.perf_counter()
    try:
        with torch.no_grad(): model(input_ids=ids.view(1, -1).to(dev), logits_to_keep=1)  # a plain forward, for scale
        sync(dev); out['forward_s'] = time.perf_counter() - t
        t = time.perf_counter()
        res = attribute(model, dict(input_ids=ids), **kw)
        sync(dev); out['attribute_s'] = time.perf_counter() - t
        out['result_gib'] = (res.attributions.numel() + (0 if res.attentions is None else res.attentions.numel())) * 4 / 2**30
        out['max_abs_delta'] = None if res.delta is None else float(res.delta.abs().max())
    except torch.OutOfMemoryError as e:
        out['error'] = f"OutOfMemoryError after {time.perf_counter() - t:.1f} s: {str(e).splitlines()[0][:160]}"
    # the points per forward attattr used (or last tried): `internal_batch_size`, else its budget (POINT_TOKENS on a
    # CPU; on a GPU all points, or what was kept after halving on out-of-memory errors)
    pts = cfg['n_steps'] + int(cfg.get('delta', True))  # the α = 0 point added for the completeness delta
    budget = hook_record(model).point_tokens or (POINT_TOKENS if dev.type == 'cpu' else None)
    T = L if layers is None else len(set(layers))
    out['points_per_forward'] = cfg.get('internal_batch_size') or (pts if budget is None else max(1, min(pts, budget // (T * cfg['tokens']))))
    if dev.type == 'cuda': out['peak_gib'] = torch.cuda.max_memory_allocated(dev) / 2**30
    else: out['peak_gib'] = proc_status('VmHWM')
    return out

LONG = dict(layers=[-2], queries=[-1], attentions=False)  # the long-input request: one layer, the last row, no attentions kept

def memory_plan(device, quick, dtype, long=False):
    "The configurations measured: (shape, tokens, what to run); `long`: only the long-input requests, at full depth."
    if long:
        return [dict(shape=s, tokens=n, n_steps=1 if torch.device(device).type == 'cpu' else 20, delta=False, **LONG)
                for s in SHAPES for n in (512, 2048)]
    if quick:
        return [dict(shape='tiny', tokens=n, layers=ls, n_steps=2) for n in (128, 512) for ls in ('all', [-2])]
    if torch.device(device).type == 'cuda':  # the full models: attattr's defaults, then the deepest single layer
        return [dict(shape=s, tokens=n, layers=ls, n_steps=20) for s in SHAPES for n in (128, 512, 2048)
                for ls in ('all', [0])] + memory_plan(device, quick, dtype, long=True)
    plan = []  # the CPU: what fits in the time and memory of a 2-core machine with ~20 GiB free, shared
    one = dict(n_steps=1, delta=False)  # one point (α = ½), no α = 0 point: the unit a default call repeats
    for s in SHAPES:
        plan.append(dict(shape=s, tokens=128, layers='all', internal_batch_size=1, **one))  # all layers, 1 point/forward
        plan += [dict(shape=s, tokens=n, layers=[-2], **one) for n in (128, 512)]  # the cheapest full-width path
        plan += [dict(shape=s, tokens=n, layers=[-2], depth=2, **one) for n in (512, 2048)]  # the same on 2 layers
    return plan

def describe(c) -> str:
    ls = 'all layers' if c['layers'] == 'all' else 'layer ' + ','.join(str(l % c['layers_total']) for l in c['layers'])
    extra = [f"model cut to {c['depth']} layers" if c.get('depth') else '', f"{c['internal_batch_size']}/fwd" if c.get('internal_batch_size') else '',
             'no delta' if c.get('delta') is False else '', 'last row' if c.get('queries') else '',
             'no attentions kept' if c.get('attentions') is False else '']
    return ', '.join([ls, f"m={c['n_steps']}"] + [e for e in extra if e])

def section_memory(a):
    dev = torch.device(a.device)
    dtype = a.dtype or ('bfloat16' if dev.type == 'cuda' else 'float32')
    what = 'torch.cuda.max_memory_allocated' if dev.type == 'cuda' else 'peak resident size of the process during the call (VmHWM, weights included)'
    print(f"\n(memory) one attribute call per configuration in a fresh subprocess, {dtype} weights on {a.device}; peak = {what}; "
          f"before = {'allocated' if dev.type == 'cuda' else 'resident'} after building the model and one warm-up call; "
          f"POINT_TOKENS = {POINT_TOKENS}")
    print(f"{'model':>13} {'tokens':>6} {'what':>42} {'pts/fwd':>7} {'params':>7} {'before GiB':>10} {'peak GiB':>9} "
          f"{'forward s':>10} {'attribute s':>12} {'result GiB':>10}")
    for c in memory_plan(a.device, a.quick, dtype, a.long):
        c = dict(c, device=a.device, dtype=dtype, threads=a.threads)
        cmd = [sys.executable, __file__, '--_one', json.dumps(c)]
        env = dict(os.environ, TRANSFORMERS_VERBOSITY='error')
        if a.threads: env.update(OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        line = next((l for l in reversed(p.stdout.splitlines()) if l.startswith('{')), None)
        if p.returncode or line is None:
            err = (p.stderr.strip().splitlines() or ['no output'])[-1][:200]
            print(f"{c['shape']:>13} {c['tokens']:>6} failed (exit {p.returncode}): {err}", flush=True); continue
        r = json.loads(line)
        name = r['shape'].replace('-shaped', '')
        tail = (f"{r['forward_s']:>10.2f} {r['attribute_s']:>12.2f} {r['result_gib']:>10.2f}" if 'error' not in r
                else f"  {r['error']}")
        print(f"{name:>13} {r['tokens']:>6} {describe(r):>42} {r['points_per_forward']:>7} {r['params'] / 1e6:>6.0f}M {r['before_gib']:>10.2f} "
              f"{r['peak_gib']:>9.2f} {tail}", flush=True)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sections', default=','.join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)} (default all)")
    ap.add_argument('--device', default='cpu', help="device of the memory section (cpu or cuda); the side-by-side sections run on the CPU")
    ap.add_argument('--dtype', default=None, help="memory section: weights' dtype (default bfloat16 on cuda, float32 on cpu)")
    ap.add_argument('--threads', type=int, default=None, help='torch threads here and in the subprocesses (default: torch default)')
    ap.add_argument('--repeats', type=int, default=3, help='induction-2l: timed calls per method and measurement, alternating (the best is kept)')
    ap.add_argument('--big_repeats', type=int, default=1, help='the Qwen2.5-0.5B-shaped model: likewise')
    ap.add_argument('--no_warm', dest='warm', action='store_false', help='skip the untimed call of each method (per model and prompt) before timing')
    ap.add_argument('--quick', action='store_true', help='tiny sizes only: a smoke test of every section')
    ap.add_argument('--long', action='store_true', help="memory section: only the long-input requests (one layer, the last row, return_attentions=False) at full depth")
    ap.add_argument('--_one', default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a._one: print(json.dumps(measure_one(json.loads(a._one)))); return
    if a.threads: torch.set_num_threads(a.threads)
    sections = a.sections.split(',')
    if bad := set(sections) - set(SECTIONS): ap.error(f"unknown sections {sorted(bad)}")
    t0 = time.time()
    print(f"machine: {machine(torch.get_num_threads())}")
    if 'reference' in sections: section_reference(a)
    if 'captum' in sections: section_captum(a)
    if 'memory' in sections: section_memory(a)
    if 'shortcut' in sections: section_shortcut(a)
    print(f"\ntotal {time.time() - t0:.0f} s; load average at the end {os.getloadavg()[0]:.1f}")

if __name__ == '__main__': main()
