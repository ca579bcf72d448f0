"Tests of `experiments/reproduce.py`: the step machinery at `--scale tiny` (tiny models and TSVs written here; seconds); its per-example pruning lives in `attattr.pruning` (tested in 08_pruning)."
import importlib.util, json, random, subprocess, sys
from pathlib import Path

import pytest

from attattr.attack import lexicon_log_odds
from attattr.testing import TINY_WORDS, tiny_model, tiny_tokenizer

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT/'experiments'/'reproduce.py'
spec = importlib.util.spec_from_file_location('reproduce', SCRIPT)
R = importlib.util.module_from_spec(spec); spec.loader.exec_module(R)

pytestmark = pytest.mark.usefixtures('one_thread')

# ---------------------------------------------------------------------------------------------------------------
# the step machinery on tiny models and TSVs
WORDS = [w for w in TINY_WORDS if w.isalpha()]
NLI_HEADER = 'index\tpromptID\tpairID\tgenre\ts1b\ts2b\ts1p\ts2p\tsentence1\tsentence2\tlabel1\tgold_label'

def _sent(r, lo, hi): return ' '.join(r.choices(WORDS, k=r.randint(lo, hi)))

def _nli_rows(r, n, labels=('contradiction', 'entailment', 'neutral')):
    return [NLI_HEADER] + [f"{i}\tp{i}\tq{i}\tfic\t\t\t\t\t{_sent(r, 4, 9)}\t{_sent(r, 3, 6)}\t{labels[i % 3]}\t{labels[i % 3]}" for i in range(n)]

@pytest.fixture(scope='module')
def tiny_setup(tmp_path_factory):
    "Tiny random models (saved as Hugging Face folders) and tiny TSVs for the three tasks."
    d, r = tmp_path_factory.mktemp('repro'), random.Random(0)
    tok = tiny_tokenizer()
    for name, k in (('sst2', 2), ('nli', 3), ('rte', 2)):
        m = tiny_model(num_labels=k, seed=len(name))
        m.save_pretrained(d/'models'/name); tok.save_pretrained(d/'models'/name)
    w = lambda p, rows: (p.parent.mkdir(parents=True, exist_ok=True), p.write_text('\n'.join(rows) + '\n'))
    for split, n in (('train', 16), ('dev', 12)):
        w(d/'data/sst-2'/f'{split}.tsv', ['sentence\tlabel'] + [f"{_sent(r, 8, 20)}\t{i % 2}" for i in range(n)])
        w(d/'data/snli'/f'{split}.tsv', _nli_rows(r, n))
        w(d/'data/rte'/f'{split}.tsv', ['index\tsentence1\tsentence2\tlabel'] +
          [f"{i}\t{_sent(r, 6, 12)}\t{_sent(r, 3, 6)}\t{('entailment', 'not_entailment')[i % 2]}" for i in range(n)])
    w(d/'data/mnli/dev_matched.tsv', _nli_rows(r, 6))
    return d

def _kw(d, **kw):
    "Keyword arguments of `reproduce` for the tiny setup in `d`."
    return dict(dict(scale='tiny', progress=False, shared=str(d), sst2_model=str(d/'models/sst2'), nli_model=str(d/'models/nli'),
                     rte_model=str(d/'models/rte'), nli_data=str(d/'data/snli'), mnli_data=str(d/'data/mnli'),
                     results_dir=str(d/'results'), out_dir=str(d/'out')), **kw)

def test_steps_write_results_and_resume(tiny_setup, capsys):
    d = tiny_setup
    R.reproduce('effectiveness,pruning', **_kw(d))
    for step in ('effectiveness', 'pruning'):
        res = json.loads((d/'results'/f'{step}.json').read_text())
        assert res['step'] == step and res['scale'] == 'tiny' and res['runtime_s'] >= 0 and res['env']['threads'] == 1
    eff = json.loads((d/'results/effectiveness.json').read_text())['tasks']
    assert set(eff) == {'nli', 'sst2'} and eff['nli']['k'] == [0, 1, 2] and eff['nli']['n'] == 4
    pr = json.loads((d/'results/pruning.json').read_text())['tasks']['sst2']
    assert len([r for r in pr['rows'] if r['method'] == 'attr']) == 11
    assert set(pr['per_example']) >= {'per_example_gold', 'per_example_pred', 'global_attr'}
    assert not list((d/'results').glob('.*.tmp'))  # atomic writes leave no temp files
    assert (d/'out/figures/pruning_sst2.png').exists()
    # a rerun skips finished steps and leaves their files alone; --force redoes one
    before = {s: (d/'results'/f'{s}.json').stat().st_mtime_ns for s in ('effectiveness', 'pruning')}
    capsys.readouterr()
    R.reproduce('effectiveness,pruning', **_kw(d))
    assert capsys.readouterr().err.count('skipped') == 2
    assert all((d/'results'/f'{s}.json').stat().st_mtime_ns == t for s, t in before.items())
    R.reproduce('effectiveness,pruning', force='pruning', **_kw(d))
    assert capsys.readouterr().err.count('skipped') == 1
    assert (d/'results/pruning.json').stat().st_mtime_ns != before['pruning']
    assert (d/'results/effectiveness.json').stat().st_mtime_ns == before['effectiveness']

def test_all_analysis_steps_tiny(tiny_setup):
    "Every step but the fine-tuning runs at tiny scale, and the claims table covers every paper claim."
    d = tiny_setup
    R.reproduce('effectiveness,pruning,pruning_heldout,universality,triggers,triggers_nolabel,trees,claims', **_kw(d))
    claims = json.loads((d/'results/claims.json').read_text())
    assert [r['id'] for r in claims['rows']] == [c for c, *_ in R.PAPER_CLAIMS]
    assert all(r['verdict'] in ('agree', 'mixed', 'disagree', 'inconclusive') for r in claims['rows'])
    # every comparative verdict comes with paired intervals (issue 19)
    ho = json.loads((d/'results/pruning_heldout.json').read_text())['tasks']['sst2']
    c = ho['compare']['attr-taylor']
    LH = ho['L'] * ho['H']
    assert c['verdict'] in ('agree', 'mixed', 'disagree', 'inconclusive') and [p['k'] for p in c['points']] == [k for k in ho['grids']['published'] if 0 < k < LH]
    assert all(p['lo'] <= p['diff'] <= p['hi'] for p in c['points'] + [c['mean']])
    # both grids fixed before the run, measured once: the published int(r·L·H) and the sixths
    assert ho['grids'] == {g: R.head_counts(LH, r) for g, r in R.HELDOUT_GRIDS.items()} and ho['k'] == sorted(set(ho['grids']['published'] + ho['grids']['sixths']))
    assert set(ho['compare_grids']) == {'published', 'sixths'} and ho['compare_grids']['published'] == ho['compare']
    assert [len(x) for x in ho['correct']['attr']] == [ho['n']] * len(ho['k'])
    # "marginal loss": attribution-pruned − full accuracy, paired, at the published counts up to half the heads, margin stated
    mg = ho['marginal']
    assert [p['k'] for p in mg['points']] == [k for k in ho['grids']['published'] if 0 < k <= LH * R.MARGINAL_UPTO] and mg['margin'] == R.MARGINAL_LOSS
    assert mg['verdict'] in ('agree', 'mixed', 'disagree', 'inconclusive') and mg['kept'] in [0] + [p['k'] for p in mg['points']]
    full = ho['acc']['attr'][ho['k'].index(0)]
    assert all(abs(p['diff'] - (ho['acc']['attr'][ho['k'].index(p['k'])] - full)) < 1e-9 for p in mg['points'])
    rows = {r['id']: r for r in claims['rows']}
    assert 'pruned − full' in rows['pruning_marginal']['measured'] and '2 SE' not in rows['pruning_marginal']['measured']
    assert rows['pruning_marginal']['verdict'] == R._combine([mg['verdict'], json.loads((d/'results/pruning_heldout.json').read_text())['tasks']['nli']['marginal']['verdict']])
    # mining with the label-bearing words excluded: no mined pattern holds one
    nl = json.loads((d/'results/triggers_nolabel.json').read_text())
    lex = lexicon_log_odds(R.read_examples('sst-2', d/'data/sst-2', 'train'), tiny_tokenizer(), ['0', '1'])
    excl = {t for v in lex.values() for t, x in v.items() if x >= R.LEXICON_BEARING}
    assert nl['excluded_tokens'] == nl['tasks']['sst2']['excluded'] == len(excl) > 0 and 'controls' in nl['tasks']['sst2']['held_out']['test']
    ck = next((d/'out/cache').glob('mine_sst2_*_excl*.jsonl')).read_text().splitlines()
    assert json.loads(ck[0])['attattr_adv_mine']['exclude'] == sorted(excl)
    pats = [r for r in (json.loads(l)['record'] for l in ck[1:]) if r]
    assert pats and not any(t in excl for r in pats for t in r['top1pattern'] + r['top2pattern'])
    eff = json.loads((d/'results/effectiveness.json').read_text())['tasks']['nli']
    assert eff['paired']['verdict'] in ('agree', 'mixed', 'disagree', 'inconclusive')
    tr = json.loads((d/'results/triggers.json').read_text())['tasks']['sst2']['held_out']['test']
    assert set(tr['controls']['control_acc']) <= {'random', 'in_domain', 'lexicon'} and isinstance(tr['label_check'], list)  # tiny: maybe no trigger chosen
    row = {r['id']: r for r in claims['rows']}['attr_vs_taylor']
    assert '[' in row['measured'] and 'held' not in row['measured']  # the tiny setup's dev starts at 0: not "held-out"
    assert (d/'results/claims.md').read_text().startswith('| claim (paper)')
    u = json.loads((d/'results/universality.json').read_text())
    assert set(u['cross']['attr']) == {'sst2~nli', 'sst2~rte', 'nli~rte'} and len(u['importance']['rte']) == 2 * 4
    t = json.loads((d/'results/trees.json').read_text())['examples']
    assert 'mnli_dev4' in t and all(-1 <= v['rollout_spearman'] <= 1 for v in t.values())
    assert R.tree_graph(t['mnli_dev4']).number_of_nodes() >= 1

def test_failed_step_writes_nothing_and_resumes_from_cache(tiny_setup, tmp_path):
    "A step that fails midway writes no result file; the score cache it saved lets the rerun start where it stopped."
    d = tiny_setup
    kw = _kw(d, results_dir=str(tmp_path/'results'), out_dir=str(tmp_path/'out'))
    with pytest.raises(ValueError, match='RTE model not found'):
        R.reproduce('universality', **{**kw, 'rte_model': str(tmp_path/'no-such-model')})
    assert not (tmp_path/'results').exists() or not list((tmp_path/'results').iterdir())
    cache = list((tmp_path/'out/cache').glob('scores_*_train_gold_*.npz'))
    assert len(cache) == 2  # SST-2 and NLI were scored before the RTE model was missed
    stamp = {p: p.stat().st_mtime_ns for p in cache}
    R.reproduce('universality', **kw)
    assert (tmp_path/'results/universality.json').exists()
    assert all(p.stat().st_mtime_ns == t for p, t in stamp.items())  # nothing recomputed for them

@pytest.mark.parametrize('kw, msg', [(dict(steps='nope'), "--steps 'nope'"), (dict(force='x'), "--force 'x'"),
                                     (dict(scale='huge'), "--scale 'huge'"), (dict(nli_task='nope'), "unknown task 'nope'"),
                                     (dict(steps=''), 'no step chosen')])
def test_bad_input(tiny_setup, tmp_path, kw, msg):
    d = tiny_setup
    steps = kw.pop('steps', 'effectiveness')
    with pytest.raises(ValueError, match=msg.replace("'", ".")): R.reproduce(steps, **_kw(d, results_dir=str(tmp_path/'r'), **kw))
    assert not (tmp_path/'r').exists()

def test_cli_one_line_error_exit_2(tmp_path):
    "The command line: the original's --flag_name spellings work, bad input is one line on stderr and exit status 2."
    p = subprocess.run([sys.executable, str(SCRIPT), '--steps', 'trees', '--results_dir', str(tmp_path/'r'), '--nli_task', 'nope'],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 2, p.stderr[-2000:]
    assert p.stderr.strip().splitlines() == ["reproduce: error: unknown task 'nope'; expected one of " + str(list(R.get_processor.__globals__['PROCESSORS']))]
    assert not (tmp_path/'r').exists()
