"""`n_steps="auto"` at equal achieved error: attattr against captum per layer and against the original (issue #22, item 3).

For each example (MiniLM NLI on shipped MNLI examples; `examples/models/induction-2l` on repeated-token prompts; a tiny
random Llama-shaped LM on random tokens), all layers, zero baseline, F = the predicted class's (top token's) probability:

  ref        attattr with 512 Gauss–Legendre points: the reference attribution, F(A) and each layer's F(B) (untimed).
  auto       `attribute(..., n_steps="auto")` at the default tol (1e-3).
  auto·tol*  the same at the first tol of TOLS whose error is at most captum-50's (when 1e-3 is not already).
  captum50   captum's `LayerIntegratedGradients` once per layer on an `nn.Identity` after the softmax (the recipe of
             bench/decoders.py, its gate giving the zero baseline), captum's defaults: 50 Gauss–Legendre points.
  captum·n*  the same at n*, the fewest Gauss–Legendre points whose error is at most auto's (searched with attattr's
             Gauss–Legendre rule, the same points and weights as captum's: every n up to 8, then doubling and
             bisection, as bench/attribution.py's `steps_to_reach`; then captum's own error at n* is measured).
  orig·cap   the original's setting, 64 left-Riemann points, through the same captum recipe (`method='riemann_left'`).
  original   encoders: bench/reference.py, the original's own computation (padded to 128, the whole model per layer
             and per batch of 16 points, 64 left-Riemann points).
  gl·m̄       diagnostic: attattr's fixed rule at m̄ = auto's mean points per layer (one pass, no adaptivity), and
  gl50       attattr at captum's 50 points: they split captum50 / auto into kernel × points × adaptivity.

Errors, per example and layer: residual = |Σ Attr − (F(A) − F(B))| / |F(A) − F(B)| (F from `ref`), distance =
max |Attr − ref| / max |ref|. An example's error is the largest over its layers; "at most" compares it per example,
each side first raised to the resolution (`FLOOR`, and for the residual float32's rounding of F(A), F(B) and Σ|Attr|,
`attattr.attribution.ROUNDING`): errors below what float32 resolves count as equal.

Timing: CPU time (`time.process_time`) with one thread (OMP_NUM_THREADS=1 is set before torch is imported), every
method of an example in one process, each called once per repetition, the order rotated and reversed between
repetitions; every method has run once (untimed) before. Ratios are per repetition (other / auto), reported as median
(min–max); over examples, the geometric mean with a 95 % bootstrap interval over examples.

All models are float32 on both sides. `AutoModelForSequenceClassification.from_pretrained` loads the shipped checkpoints
in float16 (their config says `"dtype": "float16"`); `attattr.models.load_model` loads float32. The captum copy here is
made from attattr's float32 model; pass `dtype=torch.float32` to `from_pretrained` when comparing by hand.

    python bench/auto.py                                  # every section (≈ 15 min of CPU on one idle thread)
    python bench/auto.py --sections encoders --lengths 15,50 --original_lengths '' --repeats 3
    python bench/auto.py --quick                          # a smoke test of every section (≈ 45 s of CPU)

captum is not a dependency of attattr: `pip install -e ".[compare]"` (or `pip install captum==0.9.*`).
"""
import os
os.environ.setdefault('OMP_NUM_THREADS', '1'); os.environ.setdefault('MKL_NUM_THREADS', '1')
os.environ.setdefault('TRANSFORMERS_VERBOSITY', 'error'); os.environ.setdefault('HF_HUB_OFFLINE', '1')
import argparse, copy, math, random, statistics, sys, time
from dataclasses import dataclass, field
from pathlib import Path
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'bench'))
import attribution as AB  # bench/attribution.py: the MiniLM checkpoint, the MNLI examples, `pick`, `steps_to_reach`
import decoders as D  # bench/decoders.py: the captum recipe (attention with `attn_probs` and the gate), prompts
import reference as R  # bench/reference.py: the original's computation
import attattr.attribution as AA
from attattr.attribution import DEFAULT_TOL, FAITHFUL, ROUNDING, attribute
from attattr.core import AttattrError
from attattr.data import featurize, get_processor
from attattr.hooks import hook_model
from attattr.models import load_model
from attattr.testing import tiny_causal_model

REF_STEPS = 512  # Gauss–Legendre points of the reference attribution
CAPTUM_STEPS = 50  # captum's default n_steps (its default method is Gauss–Legendre)
TOLS = (DEFAULT_TOL, 3e-4, 1e-4, 3e-5, 1e-5, 1e-6)  # auto's tolerances, tried in turn to reach captum-50's error
TIGHT_MAX_STEPS = 1024  # auto's max_steps at the tolerances tighter than the default
FLOOR = 1e-5  # errors below this (relative) count as equal: float32 attattr vs captum differ by ≤ 4e-7 of the max
MAX_SEARCH = 512  # the most captum points the search tries
LENGTHS = (15, 30, 50, 100)  # MNLI examples: the token counts picked (the closest example to each)
ORIGINAL_LENGTHS = (15, 50)  # of these, where bench/reference.py is timed too (≈ 30 s a call whatever the length)
INDUCTION_PROMPTS = ((8, 5, 4), (16, 12, 2), (24, 20, 1))  # (first, repeat, seed) of `decoders.induction_prompt`
LLAMA_TOKENS = (16, 48)  # the tiny random Llama's prompt lengths (random ids)
SECTIONS = ('encoders', 'induction', 'llama')
BOOT = 2000  # bootstrap resamples over examples

# --------------------------------------------------------------------------------------------------- the captum side
def encoder_modules(model):
    "A BERT-style encoder's self-attention modules (those with `query`, `key` and `value` projections), in layer order."
    return [m for m in model.modules() if all(hasattr(m, a) for a in ('query', 'key', 'value'))]

def encoder_recipe(model):
    "A copy of an encoder classifier on the recipe's attention (bench/decoders.py), an `nn.Identity` `attn_probs` per layer."
    m = copy.deepcopy(model).eval().requires_grad_(False)
    for a in encoder_modules(m): a.attn_probs = torch.nn.Identity()
    m.set_attn_implementation(D.RECIPE_IMPL)
    return m, encoder_modules(m)

def gated(fn):
    "F(gate, *inputs): `fn(*inputs)` run with the recipe's gate set (1 = the model, 0 = every layer's probabilities × 0)."
    def forward(gate, *inputs):
        D._GATE['gate'] = gate
        try: return fn(*inputs)
        finally: D._GATE['gate'] = None
    return forward

def encoder_forward(cm, target:int):
    "The classifier's probability of `target` (b,), as captum calls it."
    return gated(lambda ids, tt: cm(input_ids=ids, token_type_ids=tt).logits.float().softmax(-1)[:, target])

def decoder_forward(cm, target:int):
    "The next token's probability of `target` (b,) from the last position's logits (`logits_to_keep=1`), as bench/decoders.py."
    return gated(lambda ids: cm(input_ids=ids, logits_to_keep=1, use_cache=False).logits[:, -1].float().softmax(-1)[:, target])

def captum_layers(modules, forward, args:tuple, n_steps:int, method:str='gausslegendre'):
    "(L, H, n, n): `LayerIntegratedGradients` once per layer on its `attn_probs`, zero baseline through the gate."
    from captum.attr import LayerIntegratedGradients
    gate = torch.ones(1, 1)
    return torch.stack([LayerIntegratedGradients(forward, a.attn_probs, multiply_by_inputs=True).attribute(
        gate, baselines=torch.zeros_like(gate), additional_forward_args=args, n_steps=n_steps, method=method)[0].detach().float()
        for a in modules])

# ------------------------------------------------------------------------------------------------------------ errors
def layer_errors(A, ref, fA:float, fB) -> dict:
    "Per layer (L,): residual |ΣA − (F(A) − F(B))| / |F(A) − F(B)|, distance max|A − ref| / max|ref|, and the residual's resolution."
    A, ref, fB = A.double(), ref.double(), torch.as_tensor(fB).double()
    dF = (fA - fB).abs()  # (L,)
    res = (A.sum((1, 2, 3)) - (fA - fB)).abs() / dF
    dist = (A - ref).abs().amax((1, 2, 3)) / ref.abs().amax((1, 2, 3))
    floor = (ROUNDING * (abs(fA) + fB.abs() + ref.abs().sum((1, 2, 3))) / dF).clamp(min=FLOOR)
    return dict(res=res, dist=dist, floor=floor)

def example_error(e:dict) -> tuple[float, float]:
    "An example's (residual, distance): the largest over its layers, each raised to its resolution."
    return float(torch.maximum(e['res'], e['floor']).max()), float(e['dist'].clamp(min=FLOOR).max())

def at_most(e:dict, target:dict) -> bool:
    "Whether errors `e` are at most `target`'s for the example (both criteria, per example, at the resolution)."
    (r, d), (rt, dt) = example_error(e), example_error(target)
    return r <= rt and d <= dt

def excess(e:dict, target:dict) -> float:
    "How far `e` is above `target` (≤ 1: at most), the worse of the two criteria: for `steps_to_reach`."
    (r, d), (rt, dt) = example_error(e), example_error(target)
    return max(r / rt, d / dt)

# ---------------------------------------------------------------------------------------------------------- examples
@dataclass
class Case:
    "One example: its model three ways (hooked for attattr, the captum recipe, the original's), inputs and forwards."
    group:str; name:str; n:int
    hm:object; x:dict  # attattr: the hooked model and its inputs
    modules:list; forward_of:object; args:tuple  # captum: attn_probs modules, target → F, the inputs it is given
    original:object=None  # () → (L, H, n, n): the original's own computation, where there is one
    rows:list=field(default_factory=list)

def encoder_cases(lengths, original_lengths):
    "The MNLI examples closest to `lengths` tokens, MiniLM NLI in float32."
    model, tok = load_model(AB.MODEL)
    cm, mods = encoder_recipe(model)
    ref_model = R.wrap(model)
    proc = get_processor('mnli')
    exs = proc.get_examples(AB.DATA)
    feats = featurize(exs, tok, [model.config.id2label[i] for i in range(model.config.num_labels)])
    hm = hook_model(model)
    out = []
    with_orig = {AB.pick(feats, n) for n in original_lengths}
    for i in dict.fromkeys(AB.pick(feats, n) for n in lengths):
        f, ex = feats[i], exs[i]
        args = (torch.tensor([f.input_ids]), torch.tensor([f.token_type_ids]))
        orig = ((lambda x=R.encode(tok, ex.text_a, ex.text_b): R.reference_attribution(ref_model, x, 16, 4))
                if i in with_orig else None)
        out.append(Case('minilm-l6-nli', f'mnli {i}', len(f.input_ids), hm, f, mods, lambda t: encoder_forward(cm, t), args, orig))
    return out

def decoder_cases(model, name, prompts):
    "A causal LM and its prompts (token-id tensors)."
    cm = D.recipe_model(model)
    hm, mods = hook_model(copy.deepcopy(model)), D.attention_modules(cm)
    return [Case(name, f'prompt {k}', len(ids), hm, dict(input_ids=ids), mods, lambda t: decoder_forward(cm, t), (ids.view(1, -1),))
            for k, ids in enumerate(prompts)]

def induction_cases(prompts):
    model, tok = load_model(D.INDUCTION)
    return decoder_cases(model, 'induction-2l', [D.induction_prompt(tok, *p) for p in prompts])

def llama_cases(lengths):
    model = tiny_causal_model('llama')
    return decoder_cases(model, 'tiny llama (random)', [D.random_ids(n, model.config.vocab_size, seed=n) for n in lengths])

# ------------------------------------------------------------------------------------------------------ measurement
def count_forwards(fn):
    "(forwards, Σ layers × points over them) of attattr's gradient passes during `fn()`."
    seen, real = [], AA._gradients
    def spy(model, x, Ls, alphas, *a, **k):
        seen.append(len(Ls) * len(alphas)); return real(model, x, Ls, alphas, *a, **k)
    AA._gradients = spy
    try: fn()
    finally: AA._gradients = real
    return len(seen), sum(seen)

def side_by_side(fns:dict, repeats:int) -> dict:
    "{name: [CPU seconds per repetition]}: each function once per repetition, the order rotated and reversed in turn."
    names, times = list(fns), {k: [] for k in fns}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for k in (order[::-1] if r % 2 else order):
            t = time.process_time(); fns[k](); times[k].append(time.process_time() - t)
    return times

def measure(c:Case, repeats:int, log=print):
    "Errors, points and CPU times of every method on one example; fills `c.rows`."
    ref = attribute(c.hm, c.x, n_steps=REF_STEPS, method='gauss_legendre')
    fA, fB, tgt = ref.f_input, ref.f_baseline, ref.target
    err = lambda A: layer_errors(A, ref.attributions, fA, fB)
    fwd = c.forward_of(tgt)
    cap = lambda m, method='gausslegendre': captum_layers(c.modules, fwd, c.args, m, method)
    def auto(tol):
        return lambda: attribute(c.hm, c.x, n_steps='auto', tol=tol, target=tgt,
                                 max_steps=AA.DEFAULT_MAX_STEPS if tol == DEFAULT_TOL else TIGHT_MAX_STEPS)
    gl = lambda m: lambda: attribute(c.hm, c.x, n_steps=m, method='gauss_legendre', target=tgt, return_convergence_delta=False)
    rows = {}  # name → dict(points per layer, errors, fn)
    a = auto(DEFAULT_TOL)()
    rows['auto'] = dict(pts=float(a.points.float().mean()), e=err(a.attributions), fn=auto(DEFAULT_TOL),
                        fw=count_forwards(auto(DEFAULT_TOL)))
    c50 = cap(CAPTUM_STEPS)
    rows['captum50'] = dict(pts=CAPTUM_STEPS, e=err(c50), fn=lambda: cap(CAPTUM_STEPS))
    for tol in TOLS[1:]:  # the tolerance that reaches captum-50's error, when the default does not
        if at_most(rows['auto']['e'], rows['captum50']['e']): break
        try: at = auto(tol)()
        except AttattrError as e: log(f"    auto at tol={tol:g}: {e}"); break
        rows['auto·tol*'] = dict(pts=float(at.points.float().mean()), e=err(at.attributions), fn=auto(tol), tol=tol,
                                 fw=count_forwards(auto(tol)))
        if at_most(rows['auto·tol*']['e'], rows['captum50']['e']): break
    cache = {}
    def over(m):  # attattr's Gauss–Legendre at m points: how far above auto's error
        if m not in cache: cache[m] = excess(err(gl(m)().attributions), rows['auto']['e'])
        return cache[m]
    n = AB.steps_to_reach(over, 1.0, MAX_SEARCH)
    if n is not None:
        rows['captum·n*'] = dict(pts=n, e=err(cap(n)), fn=lambda: cap(n))
    rows['orig·cap'] = dict(pts=FAITHFUL['n_steps'], e=err(cap(FAITHFUL['n_steps'], 'riemann_left')),
                            fn=lambda: cap(FAITHFUL['n_steps'], 'riemann_left'))
    if c.original is not None:
        rows['original'] = dict(pts=FAITHFUL['n_steps'], e=err(c.original()), fn=c.original)
    m_bar = max(1, round(rows['auto']['pts']))
    rows['gl·m̄'] = dict(pts=m_bar, e=err(gl(m_bar)().attributions), fn=gl(m_bar))
    rows['gl50'] = dict(pts=CAPTUM_STEPS, e=err(gl(CAPTUM_STEPS)().attributions), fn=gl(CAPTUM_STEPS))
    for k, t in side_by_side({k: r['fn'] for k, r in rows.items()}, repeats).items(): rows[k]['t'] = t
    c.rows = rows
    return rows

# --------------------------------------------------------------------------------------------------------- reporting
def fmt_ratio(rs) -> str:
    return f"{statistics.median(rs):.2f} ({min(rs):.2f}–{max(rs):.2f})"

def print_case(c:Case):
    rows, ta = c.rows, c.rows['auto']['t']
    for k, r in rows.items():
        res, dist = example_error(r['e'])
        raw_r, raw_d = float(r['e']['res'].max()), float(r['e']['dist'].max())
        ratio = fmt_ratio([t / u for t, u in zip(r['t'], ta)]) if k != 'auto' else '1'
        meets = '' if k == 'auto' else ('≤ auto' if at_most(r['e'], rows['auto']['e']) else '> auto')
        extra = f" tol={r['tol']:g}" if 'tol' in r else ''
        fw = f" {r['fw'][0]} fwd" if 'fw' in r else ''
        print(f"{c.group:>20} {c.name:>10} {c.n:>4} {k + extra:>20} {r['pts']:>7.1f} {raw_r:>9.1e} {raw_d:>9.1e} "
              f"{meets:>7} {statistics.median(r['t']):>8.3f} {ratio:>20}{fw}", flush=True)

def geo_boot(ratios:list, seed=0) -> str:
    "Geometric mean of per-example ratios with a 95 % bootstrap interval over examples."
    logs = [math.log(r) for r in ratios]
    g = math.exp(statistics.fmean(logs))
    if len(logs) < 2: return f"{g:.2f}"
    rng = random.Random(seed)
    bs = sorted(math.exp(statistics.fmean(rng.choices(logs, k=len(logs)))) for _ in range(BOOT))
    return f"{g:.2f} [{bs[int(.025 * BOOT)]:.2f}, {bs[int(.975 * BOOT) - 1]:.2f}]"

def summary(cases):
    "Per model: per-example median ratios over auto, their geometric mean and bootstrap interval, and the error verdicts."
    print("\nsummary: per-example median ratio (other's CPU time / auto's), geometric mean over examples [95 % bootstrap]")
    groups = {}
    for c in cases: groups.setdefault(c.group, []).append(c)
    for g, cs in groups.items():
        for k in [k for k in cs[0].rows if k != 'auto']:
            have = [c for c in cs if k in c.rows]
            rs = [statistics.median([t / u for t, u in zip(c.rows[k]['t'], c.rows['auto']['t'])]) for c in have]
            le = sum(at_most(c.rows['auto']['e'], c.rows[k]['e']) for c in have)
            print(f"{g:>20} {k:>12}: {geo_boot(rs):>22}  per example {', '.join(f'{r:.2f}' for r in rs)};  auto's error ≤ its "
                  f"in {le} of {len(have)}")

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sections', default=','.join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    ap.add_argument('--lengths', default=','.join(map(str, LENGTHS)), help='encoders: MNLI token counts to pick examples by')
    ap.add_argument('--llama_tokens', default=','.join(map(str, LLAMA_TOKENS)), help='tiny Llama: prompt lengths')
    ap.add_argument('--prompts', type=int, default=len(INDUCTION_PROMPTS), help='induction-2l: how many prompts')
    ap.add_argument('--repeats', type=int, default=3, help='timed calls per method, alternating')
    ap.add_argument('--original_lengths', default=','.join(map(str, ORIGINAL_LENGTHS)),
                    help="encoders: the examples (by token count, as --lengths) where bench/reference.py is timed too; '' for none")
    ap.add_argument('--quick', action='store_true', help='a smoke test: one example per section, 1 repeat, no reference.py')
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    sections = a.sections.split(',')
    if bad := set(sections) - set(SECTIONS): ap.error(f"unknown sections {sorted(bad)}")
    if a.quick: a.lengths, a.llama_tokens, a.prompts, a.repeats, a.original_lengths = '15', '16', 1, 1, ''
    try: import captum  # noqa: F401
    except ImportError as e: sys.exit(f"bench/auto.py needs captum ({e}): pip install captum==0.9.*")
    t0 = time.time()
    print(f"machine: {D.machine(torch.get_num_threads())}")
    print(f"attattr auto: tol {DEFAULT_TOL:g} (max_steps {AA.DEFAULT_MAX_STEPS}), tighter tols {TOLS[1:]} (max_steps "
          f"{TIGHT_MAX_STEPS}); reference: {REF_STEPS} Gauss–Legendre points; error floor {FLOOR:g}")
    cases = []
    if 'encoders' in sections: cases += encoder_cases([int(n) for n in a.lengths.split(',')], [int(n) for n in a.original_lengths.split(',') if n])
    if 'induction' in sections: cases += induction_cases(INDUCTION_PROMPTS[:a.prompts])
    if 'llama' in sections: cases += llama_cases([int(n) for n in a.llama_tokens.split(',')])
    print(f"\n{'model':>20} {'example':>10} {'n':>4} {'method':>20} {'pts/lay':>7} {'residual':>9} {'distance':>9} "
          f"{'error':>7} {'CPU s':>8} {'ratio to auto':>20}")
    for c in cases:
        measure(c, a.repeats)
        print_case(c)
    summary(cases)
    print(f"\ntotal {time.time() - t0:.0f} s wall, {time.process_time():.0f} s CPU; load average {os.getloadavg()[0]:.1f}")

if __name__ == '__main__': main()
