"Faithfulness benchmark: metrics on tiny models, the planted model's known answer, paired comparisons, the missing-package error, the CLI."
import importlib, json
import numpy as np, pytest, torch
from attattr.core import AttattrError
from attattr.hooks import num_layers_heads
from attattr import faithfulness as fa
from attattr.testing import tiny_model, tiny_tokenizer, planted_head_model, keyword_task

pytestmark = pytest.mark.usefixtures('one_thread')

@pytest.fixture(scope='module')
def tiny():
    m, tok = tiny_model(), tiny_tokenizer()
    return m, tok, dict(tok('the dog is good and the cat', return_tensors='pt'))

@pytest.fixture(scope='module')
def planted():
    m, feats = planted_head_model()
    return m, feats[:6], tiny_tokenizer()

def test_edge_mask_identity_and_heads(tiny):
    m, tok, x = tiny
    L, H = num_layers_heads(m); n = x['input_ids'].shape[1]
    xx = fa._x(m, x)
    p = fa._probs(m, xx)[0]
    assert torch.allclose(fa._probs(m, xx)[0], p)
    with fa.edge_mask(torch.ones(L, H, n, n)): assert torch.allclose(fa._probs(m, xx)[0], p, atol=1e-6)
    hm = torch.ones(L, H); hm[1, 2] = 0; keep = torch.ones(L, H, n, n); keep[1, 2] = 0
    with fa.edge_mask(keep): q = fa._probs(m, xx)[0]
    assert torch.allclose(q, fa._probs(m, xx, head_mask=hm)[0], atol=1e-6)
    assert torch.allclose(fa._probs(m, xx)[0], p)  # the mask is gone after the block

def test_token_curves_shapes_and_areas(tiny):
    m, tok, x = tiny
    s = fa.attention_scorer(m, x)
    c = fa.token_curves(m, x, s.token, 0, fa.removal_id(tok), set(tok.all_special_ids))
    assert all(len(c[k]) == len(fa.TOKEN_FRACTIONS) for k in ('morf', 'lerf', 'keep'))
    r = fa.token_metrics(c)
    assert set(r) == {'comprehensiveness', 'sufficiency', 'deletion_morf', 'deletion_lerf', 'insertion'}
    assert fa.removal_id(tok) == tok.mask_token_id

def test_special_tokens_never_removed(tiny):
    m, tok, x = tiny
    pos = fa._content(fa._x(m, x), set(tok.all_special_ids)).tolist()
    assert 0 not in pos and x['input_ids'].shape[1] - 1 not in pos

def test_edge_and_head_curves(tiny):
    m, tok, x = tiny
    s = fa.attattr_scorer(m, x)
    e = fa.edge_metrics(fa.edge_curves(m, x, s.edge, 0)); assert set(e) == {'edge_removal_drop', 'edge_keep'}
    h = fa.head_curve(m, x, s.head, 0); assert len(h['prune']) == len(fa.HEAD_FRACTIONS)

def test_captum_attention_equals_attattr(tiny):
    pytest.importorskip('captum')
    m, tok, x = tiny
    assert torch.allclose(fa.captum_attention_scorer(m, x).edge, fa.attattr_scorer(m, x).edge, atol=1e-5)

def test_missing_captum_is_one_clear_error(tiny, monkeypatch):
    m, tok, x = tiny
    real = importlib.import_module
    def fake(name, *a, **k):
        if name.startswith('captum'): raise ImportError("No module named 'captum'")
        return real(name, *a, **k)
    monkeypatch.setattr(fa.importlib, 'import_module', fake)
    for f in (fa.lig_scorer, fa.captum_attention_scorer):
        with pytest.raises(AttattrError, match=r'pip install "attattr\[compare\]"'): f(m, x)

def test_bootstrap_is_seeded():
    v = np.random.default_rng(1).normal(size=30)
    a, b = fa.bootstrap_mean(v), fa.bootstrap_mean(v)
    assert a == b and a['lo'] <= a['mean'] <= a['hi']

def test_planted_word_ranks_first_and_curves_show_it(planted):
    m, feats, tok = planted
    rid, special = fa.removal_id(tok), set(tok.all_special_ids)
    att, rnd = [], []
    for f in feats:
        s = fa.attattr_scorer(m, f)
        assert int(s.token[1:-1].argmax()) == 0  # the first word decides the class
        t = fa.predicted(m, f)
        att.append(fa.token_metrics(fa.token_curves(m, f, s.token, t, rid, special, fractions=(0.01,)))['comprehensiveness'])
        r = fa.random_scorer(m, f)
        rnd.append(fa.token_metrics(fa.token_curves(m, f, r.token, t, rid, special, fractions=(0.01,)))['comprehensiveness'])
    assert np.mean(att) > np.mean(rnd)

def test_run_benchmark_table(planted):
    m, feats, tok = planted
    res = fa.run_benchmark(m, feats[:3], ['attattr', 'rollout', 'random'], tokenizer=tok)
    assert 'edge_removal_drop' not in res['table']['rollout'] and 'comprehensiveness' in res['table']['rollout']
    assert res['table']['attattr']['comprehensiveness']['n'] == 3
    assert 'not available' not in fa.format_table(res, ['comprehensiveness', 'edge_removal_drop'])

def test_paired_identical_scorers_give_zero(planted, monkeypatch):
    m, feats, tok = planted
    monkeypatch.setitem(fa.SCORERS, 'attattr_again', fa.attattr_scorer)
    res = fa.run_benchmark(m, feats[:3], ['attattr', 'attattr_again'], tokenizer=tok)
    d = res['paired']['attattr_again']
    assert set(d) == set(res['table']['attattr']) and 'attattr' not in res['paired']
    assert all((v['diff'], v['lo'], v['hi'], v['verdict']) == (0., 0., 0., 'equal') for v in d.values())

def test_random_is_worse_than_attattr_on_planted(planted):
    m, feats, tok = planted
    res = fa.run_benchmark(m, feats, ['attattr', 'random'], levels=('tokens', 'edges'), tokenizer=tok)
    p = res['paired']['random']
    assert p['comprehensiveness']['hi'] < 0 and p['comprehensiveness']['verdict'] == 'worse'  # the deciding word ranked first
    assert p['sufficiency']['lo'] > 0 and p['sufficiency']['verdict'] == 'worse'  # lower is better for sufficiency
    assert p['edge_removal_drop']['verdict'] == 'worse'
    t = fa.format_table(res, ['comprehensiveness', 'sufficiency'], paired=True)
    assert 'sufficiency ↓' in t and '| attattr | reference | reference |' in t and 'worse' in t

def test_paired_uses_the_same_resamples():
    a = np.random.default_rng(2).normal(size=40)
    ref = fa.bootstrap_mean(a)
    d = fa.paired_differences({'attattr': {'insertion': list(a)}, 'zero': {'insertion': [0.] * 40}})['zero']['insertion']
    assert np.isclose(d['lo'], -ref['hi']) and np.isclose(d['hi'], -ref['lo'])  # same draws: the mirrored interval

def test_cli_writes_and_resumes(tmp_path):
    d = keyword_task(tmp_path/'data', n_train=4, n_dev=4)
    m = tiny_model('bert', num_labels=2); m.save_pretrained(tmp_path/'model'); tiny_tokenizer().save_pretrained(tmp_path/'model')
    kw = dict(task_name='sst-2', data_dir=str(d), model=str(tmp_path/'model'), methods='attattr,random',
              level='tokens,heads', num_examples=2, output_dir=str(tmp_path/'out'))
    fa.faithfulness_cli.__wrapped__(**kw) if hasattr(fa.faithfulness_cli, '__wrapped__') else fa.faithfulness_cli(**kw)
    out = tmp_path/'out'
    for f in ('run.json', 'faithfulness.json', 'faithfulness.csv', 'faithfulness.png', 'method-random.json'): assert (out/f).exists()
    csv = (out/'faithfulness.csv').read_text().splitlines()
    assert csv[0].endswith('diff,diff_lo,diff_hi,verdict') and any(r.startswith('random,') and r.split(',')[-1] in ('better', 'equal', 'worse') for r in csv)
    assert any(r.startswith('attattr,') and r.endswith(',,,,') for r in csv)  # the reference has no difference
    res = json.loads((out/'faithfulness.json').read_text())
    assert set(res['paired']) == {'random'} and len(res['per_example']['random']['comprehensiveness']) == 2
    before = (out/'method-random.json').stat().st_mtime_ns
    fa.faithfulness_cli(**kw)
    assert (out/'method-random.json').stat().st_mtime_ns == before  # resumed: not redone
    fa.faithfulness_cli(**{**kw, 'model': None, 'model_file': kw['model']})  # the original's flag: the same run
    assert (out/'method-random.json').stat().st_mtime_ns == before
    with pytest.raises(AttattrError, match=r"other settings \(level: \['tokens', 'heads'\], asked \['tokens'\]\)"):
        fa.faithfulness_cli(**{**kw, 'level': 'tokens'})  # the field that differs, named
    with pytest.raises(AttattrError, match=r'--model is required \(or --model_file\)'): fa.faithfulness_cli(**{**kw, 'model': None})
    with pytest.raises(AttattrError, match='unknown'): fa.faithfulness_cli(**{**kw, 'methods': 'nope'})
