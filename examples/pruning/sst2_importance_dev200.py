#!/usr/bin/env python
"""Attribution vs Taylor pruning on SST-2 with the original's importance set: the first 200 examples nobody else uses.

The reproduction (`experiments/reproduce.py`, steps `pruning` and `pruning_heldout`) ranks heads on the first 100 SST-2
*training* sentences (which the checkpoint was fine-tuned on) and compares the rankings on 1,500 held-out dev sentences.
The original ranks heads on 200 examples the model was not trained on. This script ranks on SST-2 dev sentences
1,800–1,999 (unseen by the checkpoint and by every step of the reproduction), 5 Gauss–Legendre points as the reproduction,
Taylor with the original's Σ-logits objective, and compares the two rankings on the same 1,500 held-out dev sentences
(300–1,799) at the published head counts int(r·72), r = 0.1 … 0.9, and at sixths (12 … 60), paired bootstrap.

    OMP_NUM_THREADS=1 python examples/pruning/sst2_importance_dev200.py [--shared ../shared] [--out examples/pruning/sst2_importance_dev200.json]
"""
import argparse, sys, time
from pathlib import Path
import numpy as np, torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT/'experiments'))
import reproduce as R
from attattr.core import write_json_atomic
from attattr.data import featurize, read_examples
from attattr.hooks import num_layers_heads
from attattr.models import load_model
from attattr.pruning import NONINFERIORITY, compare_curves, curve_at, head_counts, head_importance, per_example_pruning_curve

IMPORTANCE = (1800, 2000)  # dev rows the rankings are computed on (the original: 200 examples)
EVAL = (300, 1800)  # dev rows they are compared on (the reproduction's held-out set)

def main(shared, out, limit=None):
    torch.set_num_threads(1)
    model, tok = load_model(Path(shared)/'models/minilm-l6-sst2', num_labels=2)
    dev = featurize(read_examples('sst-2', Path(shared)/'data/sst-2', 'dev'), tok, ['0', '1'])
    imp_f, ev = dev[slice(*IMPORTANCE)][:limit], dev[slice(*EVAL)][:limit]
    L, H = num_layers_heads(model)
    c0, t0 = time.process_time(), time.time()
    imps = dict(attr=head_importance('attr', model, imp_f, progress=False, **R.FAST_ATTR).numpy(),
                taylor=head_importance('taylor', model, imp_f, faithful=True, progress=False).numpy())
    cpu_imp = time.process_time() - c0
    grids = {g: head_counts(L * H, r) for g, r in R.HELDOUT_GRIDS.items()}
    ks = sorted(set().union(*grids.values()))
    cur = {m: per_example_pruning_curve(model, ev, v, heads=ks) for m, v in imps.items()}
    cmp = {g: compare_curves(curve_at(cur['attr'], gk), curve_at(cur['taylor'], gk), NONINFERIORITY) for g, gk in grids.items()}
    rec = dict(importance_rows=IMPORTANCE, eval_rows=EVAL, n_importance=len(imp_f), n_eval=len(ev), attr_settings=R.FAST_ATTR, k=ks, grids=grids,
               importances={m: v.tolist() for m, v in imps.items()}, acc={m: c['acc'] for m, c in cur.items()},
               correct={m: c['correct'] for m, c in cur.items()}, compare=cmp, margin=NONINFERIORITY,
               cpu_s=dict(importance=round(cpu_imp, 1), total=round(time.process_time() - c0, 1)), wall_s=round(time.time() - t0, 1))
    write_json_atomic(rec, out, indent=1)
    for g, c in cmp.items():
        print(g, c['verdict'], 'mean', {k: round(v, 4) for k, v in c['mean'].items()})
        for p in c['points']: print(f"  k={p['k']:3d} attr−taylor {p['diff']:+.3f} [{p['lo']:+.3f}, {p['hi']:+.3f}]")
    print('acc', {m: [round(a, 3) for a in v] for m, v in rec['acc'].items()}, 'k', ks, 'cpu', rec['cpu_s'])

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--shared', default=str(ROOT.parent/'shared'))
    ap.add_argument('--out', default=str(ROOT/'examples/pruning/sst2_importance_dev200.json'))
    ap.add_argument('--limit', type=int, default=None, help='first LIMIT examples of each set (a quick check)')
    a = ap.parse_args()
    main(a.shared, a.out, a.limit)
