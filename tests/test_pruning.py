"Tests of `attattr.pruning`: masks, real pruning, importances on a planted-head model, curves, effectiveness, the CLI."
import csv, json, os, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import torch

from attattr.core import AttattrError
from attattr.data import collate, featurize, featurize_task
from attattr.hooks import HookState, hooked_forward, num_layers_heads
from attattr.inference import evaluate_features
from attattr.testing import tiny_model, tiny_tokenizer
from attattr.pruning import *
from attattr.testing import *
from attattr.testing import PLANTED_LABELS

torch.set_num_threads(1)  # tiny models: threads only add overhead, and the test machine's cores are shared
PLANTED = (1, 2)  # (layer, head) of the planted head
CLI = Path(sys.executable).parent/'attattr-prune'

def err(f, *a, **kw):
    "The one-line message of the `AttattrError` that `f(*a, **kw)` raises."
    with pytest.raises(AttattrError) as e: f(*a, **kw)
    assert '\n' not in str(e.value)
    return str(e.value)

@pytest.fixture(scope='module')
def planted():
    "A tiny BERT (2 layers × 4 heads) whose only head with non-zero values is `PLANTED`, trained to 100 %."
    model, feats = planted_head_model(*PLANTED, seed=0)
    assert evaluate_features(model, feats)['acc'] == 1.
    return model, feats

def batch(n=9, b=3, pad=True, seed=0):
    "Random token ids (b, n), the second example right-padded."
    g = torch.Generator().manual_seed(seed)
    x = dict(input_ids=torch.randint(5, 60, (b, n), generator=g), attention_mask=torch.ones(b, n, dtype=torch.long))
    if pad: x['attention_mask'][1, n - 3:] = 0
    return x

# ---------------------------------------------------------------- masking and real pruning
def test_mask_zeroes_context_exactly():
    m = tiny_model('bert', layers=2, heads=4); x = batch()
    mask = torch.ones(2, 4); mask[1, 2] = 0
    full, masked = HookState(keep_context=True), HookState(keep_context=True, head_mask=mask)
    with torch.no_grad(): hooked_forward(m, x, full); hooked_forward(m, x, masked)
    assert masked.contexts[1][:, 2].abs().max().item() == 0.
    assert torch.equal(masked.contexts[0], full.contexts[0])  # layers below are untouched
    keep = [0, 1, 3]
    assert torch.equal(masked.contexts[1][:, keep], full.contexts[1][:, keep])  # and so are the other heads of the layer

@pytest.mark.parametrize('family', ['bert', 'roberta'])
def test_pruned_logits_equal_masked(family):
    m = tiny_model(family, layers=3, heads=4); x = batch(seed=1)
    mask = torch.ones(3, 4); mask[0, [0, 2]] = 0; mask[1, 3] = 0; mask[2] = 0  # layer 2: no head left
    p = pruned_copy(m, mask)
    with torch.no_grad(): ref, out = hooked_forward(m, x, HookState(head_mask=mask)), hooked_forward(p, x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    assert heads_per_layer(p) == [2, 3, 0] and heads_per_layer(m) == [4, 4, 4]
    assert pruned_heads(p) == {0: [0, 2], 1: [3], 2: [0, 1, 2, 3]} and pruned_heads(m) == {}
    assert num_layers_heads(p) == (3, 4)  # from the config: the original sizes
    a = p.base_model.encoder.layer[0].attention
    assert (a.self.num_attention_heads, a.self.all_head_size, a.self.query.out_features, a.output.dense.in_features) == (2, 16, 16, 16)
    # the pruned model is smaller and still hooks every layer (recording gives h_l heads per layer)
    assert sum(t.numel() for t in p.parameters()) < sum(t.numel() for t in m.parameters())
    st = HookState(record=True)
    with torch.no_grad(): hooked_forward(p, x, st)
    assert [t.shape[1] for t in st.probs] == [2, 3, 0]

def test_prune_unsupported_family():
    assert 'distilbert' in err(prune_heads, tiny_model('distilbert'), {0: [1]})

# ---------------------------------------------------------------- importances
def test_importances_deterministic(planted):
    model, feats = planted
    for m in IMPORTANCE_METHODS:
        a = head_importance(m, model, feats[:6], seed=3, progress=False)
        b = head_importance(m, model, feats[:6], seed=3, progress=False)
        assert a.shape == (2, 4) and torch.equal(a, b), m
    assert not torch.equal(head_importance('random', model, feats, seed=1), head_importance('random', model, feats, seed=2))

def test_planted_head_ranked_first(planted):
    model, feats = planted
    L, H = num_layers_heads(model)
    flat = PLANTED[0] * H + PLANTED[1]
    attr = attr_importance(model, feats[:24], progress=False)
    assert int(attr.flatten().argmax()) == flat
    assert prune_order(attr)[-1] == flat  # pruned last
    others = torch.ones(L, H, dtype=torch.bool); others[PLANTED] = False
    assert attr[others].abs().max() == 0  # zero values: zero attribution
    for faithful in (True, False):
        assert int(taylor_importance(model, feats, faithful=faithful, progress=False).flatten().argmax()) == flat

def test_effectiveness_planted(planted):
    model, feats = planted
    eff = effectiveness_curve(model, feats[:18], ks=[0, 1, 4], progress=False)
    assert eff['k'] == [0, 1, 4] and eff['n'] == 18
    assert eff['attr_top'][0] == eff['attr_bottom'][0] == 1.
    assert eff['attr_bottom'][1] == 1.  # the bottom head of each layer has zero values: nothing changes
    assert eff['attr_top'][1] <= 0.5  # the top head by attribution is the planted one: near chance
    assert eff['attr_top'][2] == eff['attr_bottom'][2] == eff['att_top'][2]  # every head pruned

# ---------------------------------------------------------------- curves
def test_curves_monotone_and_written_atomically(planted, tmp_path, monkeypatch):
    model, feats = planted
    imps = {m: head_importance(m, model, feats[:8], progress=False) for m in ('attr', 'random')}
    rows = pruning_curves(model, feats, imps, step=0.3, latency_features=feats[:3], latency_methods=['attr'], progress=False)
    for m in imps:
        mr = [r for r in rows if r['method'] == m]
        fr, ks = [r['fraction'] for r in mr], [r['k'] for r in mr]
        assert fr == [0, .3, .6, .9, 1.] and all(a < b for a, b in zip(fr, fr[1:]))
        assert ks == [0, 2, 4, 7, 8] and all(a <= b for a, b in zip(ks, ks[1:]))
    assert all(r['latency_ratio'] > 0 for r in rows if r['method'] == 'attr')
    assert all('latency_ratio' not in r for r in rows if r['method'] == 'random')
    attr_acc = [r['acc'] for r in rows if r['method'] == 'attr']
    assert attr_acc[:-1] == [1.] * 4 and attr_acc[-1] < .5  # the planted head goes last
    files = write_curves(rows, tmp_path)
    assert [r['method'] for r in csv.DictReader(open(files[0]))] == [r['method'] for r in rows]
    assert json.loads(files[1].read_text()) == json.loads(json.dumps(rows))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    def boom(*a): raise OSError('disk full')
    monkeypatch.setattr(os, 'replace', boom)
    with pytest.raises(OSError): write_curves(rows[:2], tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # old files intact, no temp files left

def test_bad_input(planted, tmp_path):
    model, feats = planted
    for step in (0, -.1, 1.5, float('nan')): assert 'step must be in (0, 1]' in err(fractions, step)
    assert 'fraction must be in [0, 1]' in err(num_pruned, 1.1, 8)
    assert 'unknown importance method' in err(head_importance, 'magnitude', model, feats)
    unlabelled = featurize([type(e)(e.guid, e.text_a) for e in planted_examples(4)], tiny_tokenizer(), PLANTED_LABELS)
    assert 'no gold label' in err(attr_importance, model, unlabelled)
    assert 'no gold label' in err(evaluate_features, model, unlabelled)
    assert 'no examples' in err(head_importance, 'attr', model, [])
    assert 'no examples' in err(pruning_curves, model, [], {'r': torch.zeros(2, 4)})
    assert 'step must be' in err(pruning_curves, model, feats, {'r': torch.zeros(2, 4)}, step=2)
    assert 'unsupported metric' in err(pruning_curves, model, feats, {'r': torch.zeros(2, 4)}, metric='pearson')

# ---------------------------------------------------------------- command line
@pytest.fixture(scope='module')
def task(tmp_path_factory):
    "A tiny 2-label model folder and an SST-2-layout data folder (labelled dev, unlabelled test)."
    d = tmp_path_factory.mktemp('cli')
    m = tiny_model('bert', num_labels=2); m.save_pretrained(d/'model'); tiny_tokenizer().save_pretrained(d/'model')
    (d/'data').mkdir()
    exs = planted_examples(24)
    (d/'data'/'dev.tsv').write_text('sentence\tlabel\n' + ''.join(f"{e.text_a}\t{int(e.label) % 2}\n" for e in exs))
    (d/'data'/'test.tsv').write_text('index\tsentence\n' + ''.join(f"{i}\t{e.text_a}\n" for i, e in enumerate(exs)))
    return d

def cli(*args):
    if not CLI.exists(): pytest.skip(f"console script {CLI} not installed (pip install -e .)")
    return subprocess.run([sys.executable, str(CLI), *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, 'OMP_NUM_THREADS': '1'})

def test_cli_writes_the_original_files(task):
    out = task/'out'
    r = cli('--task_name', 'sst-2', '--data_dir', task/'data', '--model_file', task/'model', '--bert_model', 'bert-base-cased',
            '--output_dir', out, '--method', 'attr,taylor,random', '--num_examples', 5, '--batch_size', 4, '--num_batch', 2,
            '--step', 0.25, '--latency_examples', 3)
    assert r.returncode == 0, r.stderr
    assert '--bert_model bert-base-cased is ignored' in r.stderr
    names = {p.name for p in out.iterdir()}
    assert names == {f'{k}_{m}.json' for k in ('head_importance', 'prune_result') for m in ('attr', 'taylor', 'random')} | \
                    {'prune_curves.csv', 'prune_curves.json', 'prune_curves.png'}
    attr, taylor = (json.loads((out/f'head_importance_{m}.json').read_text()) for m in ('attr', 'taylor'))
    assert len(attr) == 8 and all(isinstance(v, float) for v in attr)  # flat, layer-major
    assert len(taylor) == 2 and all(len(row) == 4 for row in taylor)  # nested [L][H]
    np.testing.assert_allclose(np.linalg.norm(taylor, axis=1), 1, rtol=1e-6)
    res = json.loads((out/'prune_result_random.json').read_text())
    assert len(res) == 5 and all(0 <= v <= 1 for v in res)

@pytest.mark.parametrize('kw, msg', [
    (dict(step=0), 'step must be in (0, 1]'),
    (dict(step=1.5), 'step must be in (0, 1]'),
    (dict(method='attr,magnitude'), '--method'),
    (dict(num_examples=0), '--num_examples must be at least 1'),
    (dict(eval_split='test'), 'no gold label'),
    (dict(importance_split='test'), 'no gold label'),
    (dict(task_name='sts-b'), 'regression'),
    (dict(model=None), '--model is required'),
])
def test_cli_bad_input(task, kw, msg, capsys):
    out = task/'bad'
    args = dict(task_name='sst-2', data_dir=task/'data', model=task/'model', output_dir=out, quiet=True) | kw
    with pytest.raises(SystemExit) as e: prune_cli(**args)
    assert e.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('attattr-prune: error:') and msg in lines[0], lines
    assert not out.exists()

def test_cli_script_bad_input(task):
    out = task/'bad_script'
    r = cli('--task_name', 'sst-2', '--data_dir', task/'data', '--model', task/'model', '--output_dir', out, '--step', '0')
    assert r.returncode == 2 and r.stderr.strip() == 'attattr-prune: error: step must be in (0, 1], got 0.0', r.stderr
    assert not out.exists()

def test_cli_faithful_flag(task, tmp_path, capsys):
    "--faithful (the default) is the original's Taylor objective; --faithful false the gold label's cross-entropy."
    model, tok = tiny_model('bert', num_labels=2), tiny_tokenizer()
    feats = featurize_task('sst-2', task/'data', tok, limit=5)
    for flag, faithful in ((None, True), (False, False), (True, True)):
        out = tmp_path/str(flag)
        prune_cli(task_name='sst-2', data_dir=task/'data', model=task/'model', output_dir=out, method='taylor', num_examples=5,
                  latency_examples=0, quiet=True, **({} if flag is None else dict(faithful=flag)))
        got = torch.tensor(json.loads((out/'head_importance_taylor.json').read_text()), dtype=torch.float64)
        torch.testing.assert_close(got, taylor_importance(model, feats, faithful=faithful, progress=False), rtol=1e-6, atol=1e-9)
    r = cli('--task_name', 'sst-2', '--data_dir', task/'data', '--model', task/'model', '--output_dir', tmp_path/'script',
            '--method', 'taylor', '--num_examples', 5, '--latency_examples', 0, '--faithful', 'false', '--quiet')
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path/'script'/'head_importance_taylor.json').read_text()) == json.loads((tmp_path/'False'/'head_importance_taylor.json').read_text())
    assert '--faithful' in cli('--help').stdout

# ---------------------------------------------------------------- issue 19: tool gaps, paired verdicts
def test_attr_importance_quadrature_through_head_importance(planted):
    "`method=` is attr's quadrature rule (it used to collide with the importance method: TypeError); n_steps='auto' takes `tol`."
    model, feats = planted
    gl = head_importance('attr', model, feats[:4], n_steps=4, method='gauss_legendre', progress=False)
    assert torch.equal(gl, attr_importance(model, feats[:4], n_steps=4, method='gauss_legendre', progress=False))
    ref = attr_importance(model, feats[:4], n_steps=256, method='gauss_legendre', progress=False)
    auto = head_importance('attr', model, feats[:4], n_steps='auto', tol=1e-3, progress=False)
    assert (auto - ref).abs().max() <= 2e-3 * ref.abs().max()

def test_head_counts_whole_heads():
    assert head_counts(72, 1/6) == [0, 12, 24, 36, 48, 60, 72]  # the float product 59.99999999998 is 60 heads
    assert head_counts(144) == [0, 14, 28, 43, 57, 72, 86, 100, 115, 129, 144]  # the original's counts are kept
    assert head_counts(72, heads='0, 24,60') == [0, 24, 60]
    assert 'counts in 0…72' in err(head_counts, 72, heads=[80])

def test_cli_checks_heads_before_any_work(task, tmp_path, monkeypatch, capsys):
    import attattr.pruning as P
    monkeypatch.setattr(P, 'head_importance', lambda *a, **kw: pytest.fail('importance computed before --heads was checked'))
    with pytest.raises(SystemExit) as e:
        prune_cli(task_name='sst-2', data_dir=str(task/'data'), model=str(task/'model'), output_dir=str(tmp_path/'o'), heads='0,999', quiet=True)
    assert e.value.code == 2 and 'heads must be counts' in capsys.readouterr().err and not (tmp_path/'o').exists()

def test_paired_bootstrap_known_answer():
    rng = np.random.default_rng(1)
    b = (rng.random(4000) < .7).astype(float)
    a = np.where(rng.random(4000) < 1 / 3, 1., b)  # a third of b's errors fixed: a − b = 0.1 in expectation
    r = paired_bootstrap(a, b)
    assert r['lo'] < 0.1 < r['hi'] and r == paired_bootstrap(a, b) and r['n'] == 4000
    assert abs(r['diff'] - (a - b).mean()) < 1e-12
    same = paired_bootstrap(b, b)
    worse = paired_bootstrap(b * (rng.random(4000) < .8), b)
    assert judge([same, same], same, NONINFERIORITY) == 'agree'
    assert judge([same, worse], worse, NONINFERIORITY) == 'mixed'
    assert judge([worse], worse, NONINFERIORITY) == 'disagree'
    assert judge([same], same) == 'inconclusive'  # "A beats B" needs an interval above 0
