"""Attribution speed: attattr's kernel against the reference re-implementation of the original (`bench/reference.py`).

One run prints, side by side, on this machine with the MiniLM NLI checkpoint and MNLI dev_matched examples:
  (i)   reference vs `attattr.attribution.attribute` at identical settings (FAITHFUL: 64 left-Riemann points), for a
        short (n≈15) and a long (n≈50) example: time ratio and max relative difference;
  (ii)  for riemann_left / riemann_mid / gauss_legendre, the steps each needs to reach the completeness error
        (max |delta|) of the original's 64-point left Riemann sum (64 for riemann_left itself), and the time ratio
        at that error;
  (iii) 10 examples: one `attattr-attr --num_examples 10` process vs 10 runs of `python bench/reference.py`
        (model loading and start-up included), at identical settings, at equal completeness error and at attattr's
        defaults.
Reference and attattr are timed alternately in the same process, so a shared CPU slows both alike; each timed call
follows an untimed call of the same method, as in a run over many examples.

    python bench/attribution.py --threads 1                # what bench/RESULTS.md records
    python bench/attribution.py --sections i --repeats 1   # a quick check

`--random_bert` instead times a randomly initialised bert-base-sized classifier (12 layers × 12 heads, hidden 768) on
`--device` (a GPU): the reference against attattr in float32 and with bfloat16 autocast, m = 20 points:

    python bench/attribution.py --random_bert --device cuda
"""
import argparse, os, platform, subprocess, sys, tempfile, time
from pathlib import Path
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'bench'))
import reference as R
from attattr.attribution import DEFAULT_METHOD, DEFAULT_STEPS, DEFAULT_TOL, FAITHFUL, attribute
from attattr.core import AttattrError
from attattr.data import collate, featurize, get_processor
from attattr.formats import read_layers_json
from attattr.models import load_model, load_tokenizer
from attattr.runs import load_split_results

MODEL = ROOT/'examples'/'models'/'minilm-l6-nli'  # 6 layers × 12 heads, hidden 384
DATA = ROOT/'examples'/'data'/'mnli'  # 51 MNLI dev_matched examples
LENGTHS = (15, 50)  # token counts of the short and the long example
METHODS = ('riemann_left', 'riemann_mid', 'gauss_legendre')  # quadratures compared at equal completeness error
AUTO_BATCH = 8  # --random_bert (c): examples per `attribute` call with n_steps='auto'
BF16_TOL = 1e-2  # --random_bert (c): the tolerance asked of 'auto' under bfloat16 autocast (its rounding is ~1e-2)
LINEAR_UP_TO = 8  # (ii): every step count up to this one is tried, then doubling and bisection
CLI_EXAMPLES = 10  # (iii): examples attributed
GL_STEPS = 5  # (iii): Gauss–Legendre points when (ii) does not measure them (its result on this machine)

def rel(a, b) -> float:
    "Max |a − b| relative to max |b|."
    return float((a - b).abs().max() / b.abs().max())

def timed(fn):
    "(seconds, result) of one call."
    t = time.perf_counter(); r = fn(); return time.perf_counter() - t, r

def warm_timed(fn):
    "(seconds, result) of a call right after an untimed call of the same function, as in a run over many examples."
    # timed right after the other method, a method pays to page its freed memory back in (see bench/RESULTS.md)
    fn(); return timed(fn)

def pick(feats, n):
    "Index of the example whose token count is closest to `n` (the first on a tie)."
    return min(range(len(feats)), key=lambda i: (abs(len(feats[i].input_ids) - n), i))

def max_delta(res) -> float: return float(res.delta.abs().max())

def steps_to_reach(err, target, max_m=512):
    "Smallest m with err(m) ≤ target: every m up to LINEAR_UP_TO, then doubling and bisection (errors fall with m)."
    for m in range(1, LINEAR_UP_TO + 1):
        if err(m) <= target: return m
    lo, hi = LINEAR_UP_TO, 2 * LINEAR_UP_TO
    while err(hi) > target:
        lo, hi = hi, 2 * hi
        if hi > max_m: return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if err(mid) <= target: hi = mid
        else: lo = mid
    return hi

def machine(threads) -> str:
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor())
    return (f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, {threads} thread(s), "
            f"load average {os.getloadavg()[0]:.1f}")

def sync(device):
    if torch.device(device).type == 'cuda': torch.cuda.synchronize()

def random_bert(device, layers=12, hidden=768, heads=12, m=20, repeats=3, batch_sizes=(1, 8, 32), ref_examples=3,
                internal_batch_size=None):
    "A random bert-base-sized classifier on the MNLI dev examples: reference vs attattr (fp32, bf16), ms per example."
    from transformers import BertConfig, BertForSequenceClassification
    from attattr.hooks import hook_model
    torch.manual_seed(0)
    cfg = BertConfig(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads, intermediate_size=4 * hidden,
                     num_labels=3)  # vocabulary 30522: bert-base-uncased's, which the MiniLM tokenizer also uses
    model = hook_model(BertForSequenceClassification(cfg).to(device))
    ref_model = R.wrap(model)
    proc = get_processor('mnli')
    feats = featurize(proc.get_examples(DATA), load_tokenizer(MODEL), proc.labels)
    ns = [len(f.input_ids) for f in feats]
    dev = torch.device(device)
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else machine(torch.get_num_threads())
    print(f"random BERT classifier, {layers} layers × {heads} heads, hidden {hidden}, on {device} ({name}), torch "
          f"{torch.__version__}; m = {m} left-Riemann points, all layers; MNLI dev_matched: {len(feats)} examples, "
          f"{min(ns)}–{max(ns)} tokens (mean {sum(ns) / len(ns):.1f})")
    kw = dict(n_steps=m, method='riemann_left', internal_batch_size=internal_batch_size)
    def best(fn):
        fn()  # warm-up
        out = []
        for _ in range(repeats): sync(device); t, r = timed(fn); sync(device); out.append((t, r))
        return min(out, key=lambda t: t[0])
    print(f"\n(a) one example at a time; reference: padded to 128, the whole model per layer, one batch of {m} points")
    print(f"{'example':>8} {'n':>4} {'reference s':>12} {'fp32 s':>9} {'ratio':>6} {'rel diff':>9} {'bf16 s':>9} {'ratio':>6} {'bf16 vs fp32':>13}")
    for i in [pick(feats, n) for n in (15, 35, 70)][:ref_examples]:
        f = feats[i]
        xr = {k: v.to(device) for k, v in collate([f], pad_to=128).items() if k != 'labels'}
        def ref():
            with torch.device(device): return R.reference_attribution(ref_model, xr, m, 1).cpu()
        (tr, rr), (t32, r32), (t16, r16) = best(ref), best(lambda: attribute(model, f, **kw).attributions), \
            best(lambda: attribute(model, f, autocast_dtype=torch.bfloat16, **kw).attributions)
        print(f"{i:>8} {ns[i]:>4} {tr:>12.4f} {t32:>9.4f} {tr / t32:>6.1f} {rel(r32, rr):>9.1e} {t16:>9.4f} {tr / t16:>6.1f} {rel(r16, r32):>13.1e}")
    print(f"\n(b) all {len(feats)} examples, in batches of b examples of similar length (sorted by length); ms per example")
    print(f"{'b':>4} {'fp32 ms':>9} {'bf16 ms':>9} {'peak GiB bf16':>14}")
    order = sorted(range(len(feats)), key=lambda i: ns[i])
    for b in batch_sizes:
        groups = [[feats[i] for i in order[s:s + b]] for s in range(0, len(order), b)]
        def run(dt): return [attribute(model, g, autocast_dtype=dt, **kw) for g in groups]
        t32 = best(lambda: run(None))[0]
        if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats(dev)
        t16 = best(lambda: run(torch.bfloat16))[0]
        peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == 'cuda' else float('nan')
        print(f"{b:>4} {1e3 * t32 / len(feats):>9.2f} {1e3 * t16 / len(feats):>9.2f} {peak:>14.1f}")
    print(f"\n(c) the same split with n_steps='auto', batches of {AUTO_BATCH}: examples per second and mean points per layer "
          f"(float32 at the default tol; bfloat16 at tol {BF16_TOL}, its rounding being ~1e-2)")
    print(f"{'dtype':>9} {'tol':>7} {'examples/s':>11} {'points':>7}")
    groups = [[feats[i] for i in order[s:s + AUTO_BATCH]] for s in range(0, len(order), AUTO_BATCH)]
    for dt, tol in ((None, DEFAULT_TOL), (torch.bfloat16, BF16_TOL)):
        try: t, rs = best(lambda: [r for g in groups for r in attribute(model, g, n_steps='auto', tol=tol, autocast_dtype=dt)])
        except AttattrError as e: print(f"{str(dt):>9} {tol:>7g}  {e}"); continue
        print(f"{str(dt or 'float32'):>9} {tol:>7g} {len(feats) / t:>11.1f} {float(torch.stack([r.points.float() for r in rs]).mean()):>7.1f}")

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--threads', type=int, default=None, help='torch threads here and OMP_NUM_THREADS of the subprocesses (default: torch default)')
    ap.add_argument('--repeats', type=int, default=3, help='attattr timings per measurement (the best is kept)')
    ap.add_argument('--ref_repeats', type=int, default=1, help='reference timings per example in (i) (the best is kept)')
    ap.add_argument('--ref_runs', type=int, default=CLI_EXAMPLES, help='(iii): examples, i.e. reference CLI runs')
    ap.add_argument('--sections', default='i,ii,iii', help='sections to run, comma-separated (ii needs i)')
    ap.add_argument('--gl_steps', type=int, default=None, help='(iii): Gauss–Legendre points (default: the most (ii) needed)')
    ap.add_argument('--random_bert', action='store_true', help='only the random bert-base-sized model section, on --device')
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu', help='device of --random_bert')
    ap.add_argument('--layers', type=int, default=12, help='--random_bert: layers')
    ap.add_argument('--hidden', type=int, default=768, help='--random_bert: hidden size (heads = hidden / 64)')
    ap.add_argument('--n_steps', type=int, default=20, help='--random_bert: integration points m')
    ap.add_argument('--batch_sizes', default='1,8,32', help='--random_bert: examples per attribute call, comma-separated')
    ap.add_argument('--internal_batch_size', type=int, default=None, help='--random_bert: points per forward (default: attattr decides)')
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    threads = torch.get_num_threads()
    if a.random_bert:
        return random_bert(a.device, a.layers, a.hidden, max(1, a.hidden // 64), m=a.n_steps, repeats=a.repeats,
                           batch_sizes=[int(b) for b in a.batch_sizes.split(',')], internal_batch_size=a.internal_batch_size)
    sections = set(a.sections.split(','))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM='false',
               HF_HUB_OFFLINE='1', TRANSFORMERS_VERBOSITY='error')
    t_start = time.time()
    print(f"machine: {machine(threads)}")
    model, tok = load_model(MODEL)
    ref_model = R.wrap(model)
    proc = get_processor('mnli')
    exs = proc.get_examples(DATA)
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    feats = featurize(exs, tok, labels)
    picks = [pick(feats, n) for n in LENGTHS]

    base, gl_steps = {}, a.gl_steps
    if sections & {'i', 'ii'}:
        print(f"\n(i) identical settings {FAITHFUL}: reference (padded to 128, whole model per layer and batch of 16 points) vs attattr")
        print(f"{'example':>8} {'n':>4} {'reference s':>12} {'attattr s':>10} {'ratio':>6} {'max rel diff':>13} "
              f"{'16/fwd s':>9} {'ratio':>6} {'max rel diff':>13}")
        for i in picks:
            f, ex = feats[i], exs[i]
            x = R.encode(tok, ex.text_a, ex.text_b)
            fast, one, ref = [], [], []
            for r in range(max(a.repeats, a.ref_repeats)):  # alternate, so both see the same load
                if r < a.repeats: fast.append(warm_timed(lambda: attribute(model, f, **FAITHFUL)))
                if r < a.ref_repeats: ref.append(warm_timed(lambda: R.reference_attribution(ref_model, x, 16, 4)))
                if r < a.repeats: one.append(warm_timed(lambda: attribute(model, f, **(FAITHFUL | dict(internal_batch_size=16)))))
            (tf, rf), (to, ro), (tr, rr) = min(fast, key=lambda t: t[0]), min(one, key=lambda t: t[0]), min(ref, key=lambda t: t[0])
            base[i] = (tr, rf)
            print(f"{i:>8} {len(f.input_ids):>4} {tr:>12.2f} {tf:>10.3f} {tr / tf:>6.1f} {rel(rf.attributions, rr):>13.1e} "
                  f"{to:>9.3f} {tr / to:>6.1f} {rel(ro.attributions, rr):>13.1e}")
        print("  (attattr: every layer's points in one forward/backward, as many as `POINT_TOKENS` allows; 16/fwd: in forwards "
              "of 16 points, the original's --batch_size)")

    if 'ii' in sections:
        print("\n(ii) equal completeness error: the steps each rule needs to reach the max |delta| of the original's 64-point "
              "left Riemann sum;\n     timed without the delta (the reference computes none), all points in one pass")
        print(f"{'example':>8} {'n':>4} {'method':>15} {'target':>9} {'steps':>6} {'max|delta|':>11} {'attattr s':>10} {'vs reference':>13}")
        for i in picks:
            f, (tr, rf) = feats[i], base[i]
            target = max_delta(rf)
            for meth in METHODS:
                cache = {}
                def err(m):
                    if m not in cache: cache[m] = max_delta(attribute(model, f, n_steps=m, method=meth))
                    return cache[m]
                if meth == FAITHFUL['method']: m = FAITHFUL['n_steps']; cache[m] = target  # the original's own rule
                else: m = steps_to_reach(err, target)
                t = min(timed(lambda: attribute(model, f, n_steps=m, method=meth, return_convergence_delta=False))[0]
                        for _ in range(a.repeats))
                if meth == 'gauss_legendre': gl_steps = max(gl_steps or 1, m)
                print(f"{i:>8} {len(f.input_ids):>4} {meth:>15} {target:>9.2e} {m:>6} {cache[m]:>11.2e} {t:>10.3f} {tr / t:>12.1f}×")

    if 'iii' in sections:
        n = min(a.ref_runs, len(exs))
        gl_steps = gl_steps or GL_STEPS
        print(f"\n(iii) {n} examples (indices 0..{n - 1}), model loading included: one attattr-attr process vs {n} runs of "
              "bench/reference.py")
        cli = Path(sys.executable).parent/'attattr-attr'
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            def ours(out, *extra):
                cmd = [str(cli), '--task_name', 'mnli', '--data_dir', str(DATA), '--model', str(MODEL), '--num_examples', str(n),
                       '--output_dir', str(d/out), '--quiet', *extra]
                return timed(lambda: subprocess.run(cmd, env=env, check=True, capture_output=True))[0]
            t_ours = [ours('ours')]
            t_ref = 0.
            for k in range(n):
                cmd = [sys.executable, str(ROOT/'bench'/'reference.py'), '--model', str(MODEL), '--data_dir', str(DATA),
                       '--example_index', str(k), '--output_dir', str(d/'ref')]
                t_ref += timed(lambda: subprocess.run(cmd, env=env, check=True, capture_output=True))[0]
            t_ours.append(ours('ours2'))
            t_gl = ours('gl', '--method', 'gauss_legendre', '--n_steps', str(gl_steps))
            t_def = ours('default', '--method', DEFAULT_METHOD, '--n_steps', str(DEFAULT_STEPS))
            res = load_split_results(d/'ours')
            diff = max(rel(res[k].attributions, torch.from_numpy(read_layers_json(d/'ref'/f'attr_zero_base_exp{k}.json')))
                       for k in range(n))
        to = sum(t_ours) / len(t_ours)
        print(f"  {n} × reference.py: {t_ref:.1f} s;  attattr-attr (FAITHFUL defaults): {t_ours[0]:.1f} s before, "
              f"{t_ours[1]:.1f} s after;  ratio {t_ref / to:.1f}×;  max rel diff over the {n} examples {diff:.1e}")
        print(f"  attattr-attr --method gauss_legendre --n_steps {gl_steps} (the completeness error of (ii)): {t_gl:.1f} s;  "
              f"ratio {t_ref / t_gl:.1f}×")
        print(f"  attattr-attr --method {DEFAULT_METHOD} --n_steps {DEFAULT_STEPS} (attattr's defaults, far below the original's "
              f"completeness error): {t_def:.1f} s;  ratio {t_ref / t_def:.1f}×")
    print(f"\ntotal {time.time() - t_start:.0f} s; load average at the end {os.getloadavg()[0]:.1f}")

if __name__ == '__main__': main()
