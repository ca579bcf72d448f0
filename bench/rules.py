"""Which nested rule should `n_steps="auto"` use? Points and rounds for a certified tolerance, rule against rule (#22).

Each rule integrates the same integrand, (A − B) ⊙ ∂F/∂A_l(B + α(A − B)) for one example and layer (memoised: a
point asked by several rules is computed once), and stops by the test `attribute(n_steps="auto")` uses: the change its
own error estimate reports ≤ tol × the largest score, and the completeness residual ≤ tol × |F(A) − F(B)| (plus
float32's rounding). The rules:

  simpson   attattr's rule before this comparison: adaptive Simpson panels, Boole's estimate, |Boole − Simpson| as
            the change, a failing panel bisected (4 new points); α = 0 and 1 among its points.
  cc        Clenshaw–Curtis on [0, 1] with 5, 9, 17, … points (nested: each level reuses the last), the change
            |CC_k − CC_{k−1}|; α = 0 is a node.
  gk15      adaptive Gauss–Kronrod 7/15 panels (15 points each, |K15 − G7| as the change), + α = 0 for F(B).
  gl        Gauss–Legendre of order 4, 8, 16, … (not nested: every order's points are paid), |GL_k − GL_{k/2}|, + α = 0.
  ccp5      adaptive Clenshaw–Curtis panels: a failing panel doubles its points up to 33, then splits in two.
  ccr8      ... a failing panel doubles its points only while each level cuts its change 8× (up to 65), else splits.
  acc       attattr's rule now (`attattr.attribution.nested_estimate` and `refine`): the same with 4×
            (`CC_RATIO`), the rule `n_steps="auto"` ships.
  rl2       adaptive R-Leja panels: Clenshaw–Curtis nodes in R-Leja order (every prefix a good interpolation set, the
            prefixes of 2^j + 1 points Clenshaw–Curtis's), interpolatory weights; a failing panel grows by 2 points (4
            from 17, 8 from 33) up to 65, else splits; the change from its previous size. Successive estimates 2 points
            apart: does certifying cost fewer points than doubling?
  rl4       the same growing 5, 9, 13, 17, 25, 33, 49, 65 while each step cuts its change 4×.

--oracle adds, per example and layer, the fewest Gauss–Legendre points whose error is at most each target (known only
from the reference): a floor for the points of any rule, certified or not.

For every tol of `TOLS` each rule reports its points per layer (the distinct α it evaluated) and rounds (sequential
forwards), and the error it reached, max |Attr − ref| / max |ref|, and its residual. The reference is the old rule
(simpson) run to `REF_TOL` (512 Gauss–Legendre points miss the steps of some decoder prompts); pairs where it does not
get there within `REF_MAX` points are left out of the error columns (counted). The summary then compares the rules at
equal achieved error: the points each needs, at the loosest tol where its error is at most each of `TARGETS` on every
example and layer.

    python bench/rules.py --mnli 4 --prompts 20   # what bench/RESULTS.md records (≈ 20 min of CPU, one thread)
    python bench/rules.py --sections llama        # a quick look (seconds)
    python bench/rules.py --mnli 4 --prompts 20 --rules simpson,acc,rl2,rl4 --oracle   # what certifying costs
    python bench/rules.py --sections families --rules simpson,acc   # the ten decoder families' tiny random models
"""
import os
os.environ.setdefault('OMP_NUM_THREADS', '1'); os.environ.setdefault('MKL_NUM_THREADS', '1')
os.environ.setdefault('TRANSFORMERS_VERBOSITY', 'error'); os.environ.setdefault('HF_HUB_OFFLINE', '1')
import argparse, json, random, statistics, sys, time
from functools import lru_cache
from contextlib import nullcontext
from pathlib import Path
import numpy as np, torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'bench'))
import auto as BA  # bench/auto.py: the cases (MiniLM on MNLI, induction-2l, tiny Llama)
import attattr.attribution as AA

TOLS = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5)  # the tolerances each rule runs at
FAMILY_TOKENS = (12, 24, 40)  # --sections families: the random prompts' lengths
TARGETS = (1e-3, 1e-4, 1e-5)  # achieved distances the summary compares the rules at
MAX_POINTS = 1024  # a rule that would need more stops (reported as not reached)

# ------------------------------------------------------------------------------------------------------- the rules
G7K15_X = (0.991455371120812639, 0.949107912342758525, 0.864864423359769073, 0.741531185599394440,
           0.586087235467691130, 0.405845151377397167, 0.207784955007898468, 0.)  # Kronrod nodes on [−1, 1], ≥ 0
G7K15_WK = (0.022935322010529225, 0.063092092629978553, 0.104790010322250184, 0.140653259715525919,
            0.169004726639267903, 0.190350578064785410, 0.204432940075298892, 0.209482141084727828)
G7K15_WG = (0., 0.129484966168869693, 0., 0.279705391489276668, 0., 0.381830050505118945, 0., 0.417959183673469388)

def kronrod(xs, wk, wg):
    "A Gauss–Kronrod pair on [0, 1]: nodes (2k+1,), Kronrod and Gauss weights."
    nodes = [-v for v in xs[:-1]] + [v for v in xs[::-1]]
    k = list(wk[:-1]) + list(wk[::-1])
    g = list(wg[:-1]) + list(wg[::-1])
    return (np.array(nodes) + 1) / 2, np.array(k) / 2, np.array(g) / 2

def clenshaw_curtis(n:int):
    "Clenshaw–Curtis on [0, 1] with n intervals (a power of 2): attattr's points and weights, as arrays."
    return tuple(np.array(v) for v in AA.clenshaw_curtis(n.bit_length() - 1))

def check_rules():
    "Each rule integrates the polynomials it should exactly."
    x, k, g = kronrod(G7K15_X, G7K15_WK, G7K15_WG)
    for d in range(23): assert abs((k * x ** d).sum() - 1 / (d + 1)) < 1e-13, ('K15', d)
    for d in range(14): assert abs((g * x ** d).sum() - 1 / (d + 1)) < 1e-13, ('G7', d)
    for m in (3, 5, 7, 11, 13, 17, 33, 65):
        for d in range(m): assert abs((rleja_weights(m) * RLEJA_X[:m] ** d).sum() - 1 / (d + 1)) < 1e-11, ('R-Leja', m, d)
    for n in (4, 8, 16, 64):
        x, w = clenshaw_curtis(n)
        for d in range(n + 1): assert abs((w * x ** d).sum() - 1 / (d + 1)) < 1e-12, ('CC', n, d)

class Integrand:
    "∂F/∂A of one layer at any α (memoised, float64 (h, n, n)), A − B, F(A), and the points asked by the current rule."
    def __init__(self, hm, x, layer, tgt, d, fA):
        self.hm, self.x, self.layer, self.tgt, self.d, self.fA = hm, x, layer, tgt, d.double(), float(fA)
        self.memo, self.fB, self.asked, self.rounds = {}, None, set(), 0
    def reset(self): self.asked, self.rounds = set(), 0
    def __call__(self, alphas):
        "The integrand (d ⊙ ∂F/∂A) at `alphas`, one round."
        alphas = [float(a) for a in alphas]
        new = sorted({a for a in alphas if a not in self.memo})
        if new:
            i0 = new.index(0.) if 0. in new else None
            gs, f0 = AA._gradients(self.hm, self.x, [self.layer], torch.tensor(new, dtype=torch.float64), None, 64, self.tgt,
                                   None, None, None, 'prob', nullcontext(), i0)  # (1, 1, k, h, n, n)
            for j, a in enumerate(new): self.memo[a] = self.d * gs[0, 0, j].double()
            if i0 is not None: self.fB = float(f0[0, 0])
        if set(alphas) - self.asked: self.rounds += 1
        self.asked |= set(alphas)
        return [self.memo[a] for a in alphas]
    def done(self, est, err, tol):
        "The stop test of `n_steps='auto'` (`attattr.attribution.converged`): change ≤ tol·max and residual ≤ tol·|ΔF| + rounding."
        return AA.converged(est, err, self.fA, self.fB, tol)[0]

BOOLE = (7 / 90, 32 / 90, 12 / 90, 32 / 90, 7 / 90)  # attattr's rule before: Boole's weights on a panel's quarter points
SIMPSON = (1 / 6, 0., 4 / 6, 0., 1 / 6)  # ... and Simpson's on the same points (ends and middle), the coarser estimate

def rule_panels(nodes, fine, coarse):
    "Adaptive panels bisected where they fail: the `fine` weights' estimate on `nodes` (of [0, 1]), |fine − coarse| as the change; α = 0 for F(B) if no node."
    def rule(f:Integrand, tol):
        if 0. not in nodes: f([0.])  # F(B)
        panels, sums = [(0., 1.)], {}
        while True:
            new = [p for p in panels if p not in sums]
            vals = f([a + w * x for a, w in new for x in nodes])
            for j, (a, w) in enumerate(new):
                v = vals[j * len(nodes):(j + 1) * len(nodes)]
                K, G = (w * sum(float(c) * u for c, u in zip(r, v) if c) for r in (fine, coarse))
                sums[a, w] = (K, (K - G).abs())
            est, err = sum(sums[p][0] for p in panels), sum(sums[p][1] for p in panels)
            if f.done(est, err, tol): return est
            limit = tol * float(est.abs().max())
            errs = [float(sums[p][1].max()) for p in panels]
            bad = [p for p, e in zip(panels, errs) if e > limit * p[1]] or [panels[int(np.argmax(errs))]]
            halves = [q for p in bad for q in ((p[0], p[1] / 2), (p[0] + p[1] / 2, p[1] / 2))]
            if len(f.asked | {a + w * x for a, w in halves for x in nodes}) > MAX_POINTS: return None
            panels = [q for p in panels for q in ([(p[0], p[1] / 2), (p[0] + p[1] / 2, p[1] / 2)] if p in bad else [p])]
    return rule

rule_simpson = rule_panels((0., .25, .5, .75, 1.), BOOLE, SIMPSON)  # attattr's `auto` rule before this comparison
# (Boole panels, |Boole − Simpson| as the change, bisection: 4 new points)

def rule_cc(f:Integrand, tol):
    "Clenshaw–Curtis on all of [0, 1], 5, 9, 17, … points (each level reuses the last), |CC_k − CC_{k−1}| as the change."
    prev, n = None, 4
    while n <= MAX_POINTS:
        x, w = clenshaw_curtis(n)
        est = sum(float(c) * v for c, v in zip(w, f(x)))
        if prev is not None and f.done(est, (est - prev).abs(), tol): return est
        prev, n = est, 2 * n
    return None

def rule_gk(pair):
    "Adaptive Gauss–Kronrod panels of the (nodes, Kronrod weights, Gauss weights) `pair`, bisected where they fail."
    return rule_panels(*(tuple(v) for v in kronrod(*pair)))

def rule_staged(stage, first:int, top:int, ratio:float=0.):
    "Adaptive panels of nested stages, `stage(i)` → ((nodes, weights), (coarser nodes, weights)) on [0, 1]: a failing panel rises a stage up to `top` (while each stage cuts its change by `ratio`, when given), else splits in two at stage `first`."
    def rule(f:Integrand, tol):
        panels, sums = {(0., 1.): first}, {}
        def est_of(a, w, i):
            if (a, w, i) not in sums:
                K, G = (w * sum(float(c) * u for c, u in zip(ws, f(a + w * xs))) for xs, ws in stage(i))
                sums[a, w, i] = (K, (K - G).abs())
            return sums[a, w, i]
        nodes = lambda ps: {a + w * x for (a, w), i in ps.items() for x in stage(i)[0][0]}
        while True:
            f(sorted(nodes(panels)))  # one round
            parts = {p: est_of(*p, i) for p, i in panels.items()}
            est, err = sum(v[0] for v in parts.values()), sum(v[1] for v in parts.values())
            if f.done(est, err, tol): return est
            limit = tol * float(est.abs().max())
            errs = {p: float(v[1].max()) for p, v in parts.items()}
            bad = [p for p, e in errs.items() if e > limit * p[1]] or [max(errs, key=errs.get)]
            nxt = {}
            for (a, w), i in panels.items():
                if (a, w) not in bad: nxt[a, w] = i
                elif i < top and (not ratio or i < 2 or errs[a, w] <= ratio * float(est_of(a, w, i - 1)[1].max())): nxt[a, w] = i + 1
                else: nxt[a, w / 2] = nxt[a + w / 2, w / 2] = first
            if len(nodes(nxt) | f.asked) > MAX_POINTS: return None
            panels = dict(sorted(nxt.items()))
    return rule

def rule_ccp(jmax:int, ratio:float=0.):
    "Adaptive Clenshaw–Curtis panels: a failing panel's level j (2^j + 1 points) rises to `jmax` (while each level cuts its change by `ratio`, when given), else it splits in two at level 2."
    return rule_staged(lambda j: (clenshaw_curtis(2 ** j), clenshaw_curtis(2 ** (j - 1))), 2, jmax, ratio)

def rule_acc(f:Integrand, tol):
    "attattr's `n_steps='auto'` rule, through its own functions."
    values, panels, cache = {}, [(0., 1., AA.CC_FIRST_LEVEL)], {}
    pts = AA.panel_points(0., 1.)
    while True:
        values.update(zip(pts, f(pts)))
        est, err, errs = AA.nested_estimate(values, panels, 1., cache)
        if f.done(est, err, tol): return est
        panels, pts = AA.refine(panels, errs, tol * float(est.abs().max()), MAX_POINTS - len(values))
        if not pts: return None

def rule_gl(f:Integrand, tol):
    "Gauss–Legendre of order 4, 8, 16, … (no point reused), |GL_k − GL_{k/2}| as the change; α = 0 for F(B)."
    f([0.])
    prev, n = None, 4
    while len(f.asked) + n <= MAX_POINTS:
        x, w = np.polynomial.legendre.leggauss(n)
        est = sum(float(c) / 2 * v for c, v in zip(w, f((x + 1) / 2)))
        if prev is not None and f.done(est, (est - prev).abs(), tol): return est
        prev, n = est, 2 * n
    return None

LEJA_LEVEL = 10  # R-Leja rules: Clenshaw–Curtis level 10's nodes (1,025), ordered

def rleja_order(J:int=LEJA_LEVEL):
    "Clenshaw–Curtis level J's nodes θ/π in R-Leja order (the projected Leja points of the circle: prefixes of 2^j + 1 are level j's)."
    n, out, seen = 2 ** J, [], set()
    for i in range(2 * n):
        v = int(format(i, f'0{J + 1}b')[::-1], 2) / (2 * n)  # van der Corput: the circle's Leja angle 2πv
        k = round((2 * v if v <= .5 else 2 - 2 * v) * n)  # its projection's θ/π, as k/n
        if k not in seen: seen.add(k); out.append(k / n)
    return np.array(out)

RLEJA = rleja_order()
RLEJA_X = (1 - np.cos(np.pi * RLEJA)) / 2  # on [0, 1]: α = 0, 1, ½, …

@lru_cache(None)
def rleja_weights(m:int):
    "Interpolatory weights on [0, 1] of the first m R-Leja nodes (exact to degree m − 1)."
    V = np.cos(np.outer(np.arange(m), np.pi * RLEJA[:m]))  # T_k(t_i)
    mu = np.array([2 / (1 - k * k) if k % 2 == 0 else 0. for k in range(m)])
    return np.linalg.solve(V, mu) / 2

def rule_leja(sizes, ratio=0.):
    "Adaptive R-Leja panels: a failing panel grows to the next of `sizes` (while its change falls by `ratio` a step), else splits in two at sizes[1]; the change |Q_m − Q_m'| from its previous size."
    return rule_staged(lambda i: tuple((RLEJA_X[:m], rleja_weights(m)) for m in (sizes[i], sizes[i - 1])), 1, len(sizes) - 1, ratio)

RULES = dict(simpson=rule_simpson, cc=rule_cc, gk15=rule_gk((G7K15_X, G7K15_WK, G7K15_WG)), gl=rule_gl, ccp5=rule_ccp(5),
             ccr8=rule_ccp(6, 1 / 8), acc=rule_acc,
             rl2=rule_leja((3, 5, 7, 9, 11, 13, 15, 17, 21, 25, 29, 33, 41, 49, 57, 65)),
             rl4=rule_leja((3, 5, 9, 13, 17, 25, 33, 49, 65), 1 / 4))

# ----------------------------------------------------------------------------------------------------- measurement
def mnli_features():
    "The shipped MNLI examples, featurised for MiniLM NLI."
    from attattr.data import featurize, get_processor
    from attattr.models import load_model
    model, tok = load_model(BA.AB.MODEL)
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return featurize(get_processor('mnli').get_examples(BA.AB.DATA), tok, labels)

REF_TOL, REF_MAX = 1e-5, 16384  # the reference: the old rule run far tighter (Gauss–Legendre's 512 points miss some steps)

def reference(f:Integrand):
    "The integral to REF_TOL by adaptive Simpson (at most REF_MAX points), or None."
    global MAX_POINTS
    keep, MAX_POINTS = MAX_POINTS, REF_MAX
    try: est = rule_simpson(f, REF_TOL)
    finally: MAX_POINTS = keep
    f.reset()
    return est

ORACLE_MAX = 64  # --oracle: Gauss–Legendre orders tried per pair

def oracle(f:Integrand, ref):
    "Per target of `TARGETS`: the fewest Gauss–Legendre points whose estimate is within it of `ref` (None: more than ORACLE_MAX)."
    out, top = {}, float(ref.abs().max())
    for m in range(1, ORACLE_MAX + 1):
        x, w = np.polynomial.legendre.leggauss(m)
        d = float((sum(float(c) / 2 * v for c, v in zip(w, f((x + 1) / 2))) - ref).abs().max()) / top
        for t in TARGETS:
            if t not in out and d <= t: out[t] = m
        if len(out) == len(TARGETS): break
    f.reset()
    return {t: out.get(t) for t in TARGETS}

def run_case(c, log=print, with_oracle=False):
    "Rows (rule, tol, layer, points, rounds, error, residual) for one example (error None: no reference)."
    x, _ = AA._model_inputs(c.hm, [c.x], next(c.hm.parameters()).device)
    logits, att = AA._record(c.hm, x, None, nullcontext())  # (1, c), (1, L, h, n, n)
    tgt = logits.argmax(-1)  # the predicted class (top token)
    fA = float(logits.softmax(-1)[0, tgt])
    rows = []
    for l in range(att.shape[1]):
        f = Integrand(c.hm, x, l, tgt, att[0, l], fA)
        f([0.]); f.reset()
        ref = reference(f)
        if with_oracle and ref is not None:
            rows.append(dict(case=f'{c.group} {c.name}', rule='oracle', layer=l, need={str(t): m for t, m in oracle(f, ref).items()}))
        for name, rule in RULES.items():
            for tol in TOLS:
                f.reset()
                est = rule(f, tol)
                dist = None if est is None or ref is None else float((est - ref).abs().max() / ref.abs().max())
                res = None if est is None else abs(float(est.sum()) - (f.fA - f.fB)) / abs(f.fA - f.fB)
                rows.append(dict(case=f'{c.group} {c.name}', rule=name, tol=tol, layer=l, pts=len(f.asked), rounds=f.rounds,
                                 capped=est is None, dist=dist, res=res))
        log(f"  {c.group} {c.name} layer {l}: {len(f.memo)} points evaluated{'' if ref is not None else ', no reference'}")
    return rows

def worst(vals) -> str:
    vals = [v for v in vals if v is not None]
    return format(max(vals), '9.1e') if vals else f"{'—':>9}"

def summarise(rows, log=print):
    "Per group: each rule's mean points per layer, rounds and worst error and residual at each tol; and points at equal error."
    groups = list(dict.fromkeys(r['case'].rsplit(' ', 2)[0] for r in rows))
    orc, rows = [r for r in rows if r['rule'] == 'oracle'], [r for r in rows if r['rule'] != 'oracle']
    for g in groups:
        rs = [r for r in rows if r['case'].startswith(g)]
        pairs = {(r['case'], r['layer']) for r in rs}
        no_ref = {(r['case'], r['layer']) for r in rs if r['dist'] is None and not r['capped']}
        log(f"\n{g} ({len({p[0] for p in pairs})} examples, {len(pairs)} example–layer pairs; {len(no_ref)} without a "
            f"reference, left out of the error column)")
        log(f"{'rule':>8} {'tol':>7} {'pts/lay':>8} {'rounds':>7} {'max err':>9} {'max res':>9}")
        for name in RULES:
            for tol in TOLS:
                s = [r for r in rs if r['rule'] == name and r['tol'] == tol]
                cap = sum(r['capped'] for r in s)
                log(f"{name:>8} {tol:>7.0e} {statistics.mean(r['pts'] for r in s):8.1f} {statistics.mean(r['rounds'] for r in s):7.1f} "
                    f"{worst(r['dist'] for r in s)} {worst(r['res'] for r in s)}" + (f"  ({cap} at the cap)" if cap else ''))
        log("points per layer (mean) at the loosest tol whose error is ≤ the target on every example and layer:")
        log(f"{'rule':>8} " + ' '.join(f"{'≤ ' + format(t, '.0e'):>14}" for t in TARGETS))
        for name in RULES:
            cells = []
            for t in TARGETS:
                ok = [tol for tol in TOLS if all(not r['capped'] and (r['dist'] is None or r['dist'] <= t)
                                                 for r in rs if r['rule'] == name and r['tol'] == tol)]
                s = [r for r in rs if ok and r['rule'] == name and r['tol'] == max(ok)]
                cells.append(f"{statistics.mean(r['pts'] for r in s):6.1f} @{max(ok):.0e}" if ok else f"{'—':>14}")
            log(f"{name:>8} " + ' '.join(cells))
        if os := [r for r in orc if r['case'].startswith(g)]:
            cell = lambda s, t: (f"{statistics.mean(r['need'][str(t)] for r in s):6.1f}" if all(r['need'][str(t)] for r in s)
                                 else f"{'> ' + str(ORACLE_MAX):>6}")
            log(f"{'oracle':>8} " + ' '.join(f"{cell(os, t):>14}" for t in TARGETS) + "   (the fewest Gauss–Legendre points "
                "of each pair: a floor for any rule)")
            for case in dict.fromkeys(r['case'] for r in os):
                log(f"{'':>8}   {case}: " + ', '.join(f"≤ {t:.0e}: {cell([r for r in os if r['case'] == case], t).strip()}" for t in TARGETS))

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--sections', default=','.join(BA.SECTIONS), help=f"comma-separated, of {', '.join(BA.SECTIONS)}, families")
    p.add_argument('--lengths', default='15,30,50', help="MNLI examples: token counts")
    p.add_argument('--mnli', type=int, default=0, help="instead of --lengths: every k-th of the 51 MNLI examples (k = this)")
    p.add_argument('--prompts', type=int, default=0, help="instead of the fixed prompts: this many random ones per decoder")
    p.add_argument('--rules', default=','.join(RULES), help="comma-separated, of " + ', '.join(RULES))
    p.add_argument('--oracle', action='store_true', help=f"also the fewest Gauss–Legendre points (≤ {ORACLE_MAX}) of each example and layer for each target")
    p.add_argument('--out', default=None, help="also write every row (rule, tol, example, layer, points, rounds, errors) to this JSON file")
    a = p.parse_args(argv)
    for k in set(RULES) - set(a.rules.split(',')): del RULES[k]
    check_rules()
    torch.manual_seed(0)
    sections = a.sections.split(',')
    cases = []
    if 'encoders' in sections:
        if a.mnli:  # every k-th example, by its token count (encoder_cases picks the example closest to each length)
            cases += BA.encoder_cases(sorted({len(f.input_ids) for f in mnli_features()[::a.mnli]}), ())
        else: cases += BA.encoder_cases([int(v) for v in a.lengths.split(',')], ())
    rng = random.Random(0)
    if 'induction' in sections:
        cases += BA.induction_cases([(f, rng.randint(1, f), rng.randrange(10**6)) for f in
                                     (rng.randint(6, 24) for _ in range(a.prompts))] if a.prompts else BA.INDUCTION_PROMPTS)
    if 'llama' in sections: cases += BA.llama_cases([rng.randint(8, 64) for _ in range(a.prompts)] if a.prompts else BA.LLAMA_TOKENS)
    if 'families' in sections:  # every decoder family's tiny random model, three random prompts each
        from attattr.testing import CAUSAL_FAMILIES, tiny_causal_model
        for fam in CAUSAL_FAMILIES:
            m = tiny_causal_model(fam)
            cases += BA.decoder_cases(m, fam, [BA.D.random_ids(n, m.config.vocab_size, seed=n) for n in FAMILY_TOKENS])
    t0, rows = time.time(), []
    for c in cases: rows += run_case(c, with_oracle=a.oracle)
    if a.out: Path(a.out).write_text(json.dumps(rows))
    summarise(rows)
    print(f"\n{len(cases)} examples, {time.time() - t0:.0f} s wall")

if __name__ == '__main__':
    main()
