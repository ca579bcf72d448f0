"Tests of `attattr.attack` on a tiny BERT trained here on a task decided by a planted token pair: mining, the attack, the original's insertion rules, the file formats, resumable mining and the command lines."
import json, os, random, signal, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest
import torch

from attattr.attack import *
from attattr.attack import _insert
from attattr.data import featurize_tokens
from attattr.core import AttattrError, attattr_adv_eval, attattr_adv_mine
from attattr.data import InputExample, collate, featurize
from attattr.hooks import hook_model
from attattr.inference import predict_logits
from attattr.testing import TINY_WORDS, tiny_model, tiny_tokenizer
from attattr.models import load_model

A, B = 'camping', 'exactly'  # the planted pair: label 1 iff both occur
LABELS = ['0', '1']
FILL = [w for w in TINY_WORDS if w not in (A, B) and w.isalpha() and len(w) > 1]

def make(n, seed):
    "Sentences of 5-9 filler words; a quarter hold A, a quarter B, a quarter both (label 1), a quarter neither."
    r, exs = random.Random(seed), []
    for i in range(n):
        k, words = i % 4, r.choices(FILL, k=r.randint(5, 9))
        for w, on in ((A, k in (1, 3)), (B, k in (2, 3))):
            if on: words.insert(r.randint(0, len(words)), w)
        exs.append(InputExample(f'train-{i}', ' '.join(words), None, '1' if k == 3 else '0'))
    return exs

pytestmark = pytest.mark.usefixtures('one_thread')

@pytest.fixture(scope='module')
def planted():
    "A tiny BERT trained for a few seconds (plain AdamW) on the planted-pair task, and its tokenizer."
    torch.manual_seed(0)
    tok, model = tiny_tokenizer(), tiny_model(num_labels=2, seed=0)
    model.set_attn_implementation('eager')  # trained with transformers' own attention, whatever attattr's kernel does
    feats = featurize(make(800, 0), tok, LABELS)
    opt, g = torch.optim.AdamW(model.parameters(), lr=3e-3), torch.Generator().manual_seed(0)
    model.train()
    for _ in range(6):
        perm = torch.randperm(len(feats), generator=g).tolist()
        for s in range(0, len(feats), 32):
            b = collate([feats[i] for i in perm[s:s + 32]])
            loss = model(**{k: v for k, v in b.items() if k != 'labels'}, labels=b['labels']).loss
            opt.zero_grad(); loss.backward(); opt.step()
    hook_model(model)
    dev = featurize(make(200, 1), tok, LABELS)
    assert (predict_logits(model, dev).argmax(-1) == np.array([f.label for f in dev])).mean() > 0.95
    return model, tok

@pytest.fixture(scope='module')
def mined(planted):
    "Patterns mined with the original's settings (64 left-Riemann points, its tie order) from 48 training examples."
    model, tok = planted
    return mine_patterns(model, featurize(make(48, 0), tok, LABELS), faithful=True, progress=False)

# ---------------------------------------------------------------- mining and attack recover the planted pair
def test_mining_recovers_planted_pair(mined):
    top = [r for r in pattern_table(mined, LABELS) if r['pred_label'] == '1'][0]
    assert {top['query'], top['key']} & {A, B}, top
    first = [p for p in mined if p['target_label'] == 1][0]
    assert set(pattern_trigger(first).tokens) == {A, B}, first  # the top class-1 pattern's trigger is the planted pair
    assert [sum(p['max_combined_attr']) for p in mined] == sorted((sum(p['max_combined_attr']) for p in mined), reverse=True)

def test_trigger_flips_far_more_than_random_control(planted, mined):
    model, tok = planted
    pat = [p for p in mined if p['target_label'] == 1][0]
    rep = evaluate_attack(model, tok, make(200, 2), LABELS, [pat], faithful=False, control_draws=3, progress=False)
    r0 = [r for r in rep.rows if r['group'] == '0'][0]  # the gold-0 examples: the trigger should make them 1
    assert r0['clean_acc'] > 0.95 and r0['acc'] < 0.2, r0
    assert r0['success_rate'] > 0.8 and r0['control_success_rate'] < 0.4, r0
    assert r0['control_acc'] - r0['acc'] > 0.5, r0
    assert rep.patterns[0]['0'] == r0['acc'] and set(rep.patterns[0]) == set(pat) | set(LABELS)

def test_deterministic_with_seed(planted, mined):
    model, tok = planted
    run = lambda seed: evaluate_attack(model, tok, make(40, 3), LABELS, mined[:6], seed=seed, progress=False).rows
    assert run(7) == run(7)
    assert [r['control_trigger'] for r in run(7)] != [r['control_trigger'] for r in run(8)]
    feats = featurize(make(3, 0), tok, LABELS)
    assert mine_patterns(model, feats, progress=False) == mine_patterns(model, feats, progress=False)

# ---------------------------------------------------------------- the original's insertion rules
def original_insert(pattern, tokens_a, tokens_b, if_all):
    "A line-by-line transcription of the insertion in the original run_adver_evaluate.py (convert_examples_to_features)."
    if pattern["max_combined_attr"][1] / pattern["max_combined_attr"][0] < 0.2 and not if_all:
        target_position = sorted(list(set(pattern["top1position"])))
    else:
        target_position = sorted(list(set(pattern["top1position"] + pattern["top2position"])))
    clean_position, added_tokens = [], []
    for i in range(len(target_position)):
        if pattern["tokens"][target_position[i]] != "[CLS]" and pattern["tokens"][target_position[i]] != "[SEP]":
            clean_position.append(target_position[i]); added_tokens.append(pattern["tokens"][target_position[i]])
    target_position, position_type = clean_position, []
    for i in range(len(target_position)):
        if target_position[i] < pattern["seg_pos"]:
            position_type.append(0); target_position[i] = target_position[i] / (pattern["seg_pos"] - 1)
        elif target_position[i] > pattern["seg_pos"]:
            position_type.append(1)
            target_position[i] = (target_position[i] - pattern["seg_pos"]) / (len(pattern["tokens"]) - 2 - pattern["seg_pos"])
    w_token_a_count, w_token_b_count = position_type.count(0), position_type.count(1)
    tokens_a = list(tokens_a); origin_len_a = len(tokens_a); prev_pos = -1
    for i in range(w_token_a_count):
        cur_pos = round((origin_len_a + w_token_a_count) * target_position[i])
        if prev_pos == cur_pos: cur_pos += 1
        prev_pos = cur_pos
        tokens_a.insert(cur_pos, added_tokens[i])
    if tokens_b is not None:
        tokens_b = list(tokens_b); origin_len_b = len(tokens_b); prev_pos = -1
        for i in range(w_token_a_count, len(position_type)):
            cur_pos = round((origin_len_b + w_token_b_count) * target_position[i])
            if prev_pos == cur_pos: cur_pos += 1
            prev_pos = cur_pos
            tokens_b.insert(cur_pos, added_tokens[i])
    return tokens_a, tokens_b

def test_insertion_hand_made_cases():
    T = lambda toks, rels, segs=None: Trigger(list(toks), segs or [0] * len(toks), list(rels))
    assert insert_trigger(list('abcd'), None, T('X', [.5]))[0] == list('abXcd')       # round(2.5) = 2 (half to even)
    assert insert_trigger(list('abcdef'), None, T('X', [.5]))[0] == list('abcdXef')   # round(3.5) = 4
    assert insert_trigger(list('abcd'), None, T('XY', [.5, .55]))[0] == list('abcXYd')  # 3 and 3 → collision: 3, 4
    assert insert_trigger(list('ab'), list('cde'), T('XY', [1., .125], [0, 1])) == (list('abX'), list('Ycde'))  # b: round(.5)=0
    assert insert_trigger(list('ab'), list('cde'), T('XY', [1., .375], [0, 1])) == (list('abX'), list('cdYe'))  # b: round(1.5)=2
    assert _insert(list('abc'), ['X', 'Y', 'Z'], [.5, .5, .5]) == list('abcZXY')  # 3, 3→4, then 3 ≠ 4 stays 3: only one step back
    # relative positions: segment a p/(seg_pos−1), segment b (p−seg_pos)/(len−2−seg_pos); [CLS]/[SEP] dropped
    pat = dict(max_combined_attr=[.5, .1], top1position=[2, 6], top2position=[0, 4], seg_pos=4,
               tokens=['[CLS]', 'a', 'man', 'sleeps', '[SEP]', 'he', 'awake', '[SEP]'])
    t = pattern_trigger(pat)
    assert (t.tokens, t.segments, t.rel) == (['man', 'awake'], [0, 1], [2 / 3, 1.])
    assert pattern_trigger(pat, if_all=True).tokens == ['man', 'awake']  # top-2 cell is [CLS]→[SEP]: nothing added

def test_insertion_matches_original_transcription():
    r = random.Random(0)
    for case in range(400):
        na, nb = r.randint(1, 8), r.randint(1, 8)
        toks = ['[CLS]'] + [f'a{i}' for i in range(na)] + ['[SEP]'] + [f'b{i}' for i in range(nb)] + ['[SEP]']
        pos = lambda: [r.randrange(len(toks)), r.randrange(len(toks))]
        v1 = r.uniform(.01, 1)
        pat = dict(max_combined_attr=[v1, v1 * r.choice([.1, .2, .5])], top1position=pos(), top2position=pos(),
                   seg_pos=na + 1, tokens=toks)
        a, b = [f'x{i}' for i in range(r.randint(1, 9))], r.choice([None, [f'y{i}' for i in range(r.randint(1, 9))]])
        for if_all in (False, True):
            assert insert_trigger(a, b, pattern_trigger(pat, if_all)) == original_insert(pat, a, b, if_all), (pat, a, b)

def test_truncation_after_insertion(planted):
    _, tok = planted
    f = featurize_tokens(list('abcdefgh'), None, tok, max_seq_length=6)
    assert f.tokens == ['[CLS]', 'a', 'b', 'c', 'd', '[SEP]']
    ex = [InputExample('x', 'the man the man the man the man', None, '0')]
    t = Trigger(['camping'], [0], [1.])  # goes to the end, then truncation cuts it off
    feats, cut = attack_features(ex, tok, LABELS, t, max_seq_length=6)
    assert 'camping' not in feats[0].tokens and cut.tolist() == [True]
    with pytest.raises(AttattrError, match='more than max_seq_length'):
        attack_features(ex, tok, LABELS, Trigger(['a'] * 5, [0] * 5, [1.] * 5), max_seq_length=6)

def test_filter_off_by_one():
    ps = [dict(max_combined_attr=[v, 0.]) for v in (.5, .3, .1)]
    assert len(filter_patterns(ps, faithful=True)) == 2 and len(filter_patterns(ps)) == 3
    assert len(filter_patterns(ps + [dict(max_combined_attr=[.01, .005])])) == 3
    assert filter_patterns([dict(max_combined_attr=[.01, 0.])] + ps) == []  # stops at the first below, as the original

# ---------------------------------------------------------------- file formats
def test_pattern_file_round_trip(mined, tmp_path):
    p = tmp_path/'train_adver_pattern_exp0-48.json'
    write_patterns(mined, p)
    text = p.read_text()
    assert text == json.dumps(mined, indent=2) + '\n'  # the original's writer
    assert read_patterns(p) == mined
    assert list(json.loads(text)[0]) == list(PATTERN_FIELDS)
    rec = json.loads(text)[0]
    assert rec['top1pattern'] == [rec['tokens'][i] for i in rec['top1position']] and rec['tokens'][rec['seg_pos']] == '[SEP]'
    assert isinstance(rec['target_label'], int) and isinstance(rec['golden_label'], int)

# ---------------------------------------------------------------- resumable mining
def test_resume_in_process(planted, tmp_path, monkeypatch):
    model, tok = planted
    feats, ck = featurize(make(6, 5), tok, LABELS), tmp_path/'x.partial.jsonl'
    import attattr.attack as att
    real, calls = att.mine_example, []
    def flaky(*a, **kw):
        calls.append(1)
        if len(calls) == 4: raise KeyboardInterrupt
        return real(*a, **kw)
    monkeypatch.setattr(att, 'mine_example', flaky)
    with pytest.raises(KeyboardInterrupt): mine_patterns(model, feats, start=10, checkpoint=ck, progress=False)
    lines = ck.read_text().splitlines()
    assert len(lines) == 4 and [json.loads(l)['index'] for l in lines[1:]] == [10, 11, 12]
    with open(ck, 'a') as f: f.write('{"index": 13, "rec')  # a torn line, as a crash mid-write leaves
    calls.clear(); monkeypatch.setattr(att, 'mine_example', lambda *a, **kw: (calls.append(1), real(*a, **kw))[1])
    resumed = mine_patterns(model, feats, start=10, checkpoint=ck, progress=False)
    assert len(calls) == 3
    assert resumed == mine_patterns(model, feats, start=10, progress=False)
    with pytest.raises(AttattrError, match='another run'): mine_patterns(model, feats[:5], start=10, checkpoint=ck)

def cola_dir(path, exs):
    "Examples as a CoLA-layout train.tsv / dev.tsv (label column 1, sentence last)."
    path.mkdir(parents=True, exist_ok=True)
    for split in ('train', 'dev'):
        (path/f'{split}.tsv').write_text('src\tlabel\tx\tsentence\n' + ''.join(f'g\t{e.label}\t\t{e.text_a}\n' for e in exs))
    return path

@pytest.fixture(scope='module')
def saved(planted, tmp_path_factory):
    "The planted model saved as a Hugging Face folder, and a CoLA-layout data folder."
    model, tok = planted
    d = tmp_path_factory.mktemp('saved')
    model.save_pretrained(d/'model'); tok.save_pretrained(d/'model')
    return d/'model', cola_dir(d/'data', make(24, 0))

def test_mining_cli_resumes_after_kill(saved, tmp_path):
    model_dir, data = saved
    args = ['--task_name', 'cola', '--data_dir', str(data), '--model_file', str(model_dir), '--output_dir', str(tmp_path),
            '--num_exp', '20', '--batch_size', '4', '--num_batch', '16', '--no_progress']
    cmd = [sys.executable, '-c', 'from attattr.core import attattr_adv_mine; attattr_adv_mine()', *args]
    ck, out = tmp_path/'train_adver_pattern_exp0-20.partial.jsonl', tmp_path/'train_adver_pattern_exp0-20.json'
    env = dict(os.environ, OMP_NUM_THREADS='1')  # one thread, as in-process (see `one_thread`)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    t0 = time.time()
    while time.time() - t0 < 120 and p.poll() is None and (not ck.exists() or len(ck.read_text().splitlines()) < 4): time.sleep(0.02)
    if p.poll() is not None: pytest.skip(f"the run ended (status {p.returncode}) before it could be interrupted")
    p.send_signal(signal.SIGKILL); p.wait()
    assert not out.exists()
    before = [json.loads(l) for l in ck.read_text().splitlines()[1:] if l.endswith('}')]
    assert 3 <= len(before) < 20
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert not ck.exists() and out.exists() and (tmp_path/'train_adver_pattern_exp0-20_table.csv').exists()
    got = read_patterns(out)
    assert len(got) == 20
    for b in before: assert b['record'] in got  # the records done before the kill were kept, not recomputed
    model, tok = load_model(model_dir)
    ref = mine_patterns(model, featurize(make(20, 0), tok, LABELS), internal_batch_size=4, faithful=True, progress=False)  # the CLI's default
    assert [(p['top1position'], p['top2position'], p['tokens']) for p in got] == [(p['top1position'], p['top2position'], p['tokens']) for p in ref]
    np.testing.assert_allclose([p['max_combined_attr'] for p in got], [p['max_combined_attr'] for p in ref], rtol=1e-4, atol=1e-7)

# ---------------------------------------------------------------- command lines: outputs and bad input
def cli(monkeypatch, capsys, fn, *args):
    "Run a console-script function in-process: (exit status, stdout, stderr)."
    monkeypatch.setattr(sys, 'argv', ['prog', *map(str, args)])
    code = 0
    try: fn()
    except SystemExit as e: code = e.code
    o = capsys.readouterr()
    return code, o.out, o.err

def test_eval_cli_outputs(saved, mined, tmp_path, monkeypatch, capsys):
    model_dir, data = saved
    pf = tmp_path/'train_adver_pattern_exp0-48.json'; write_patterns(mined, pf)
    code, out, err = cli(monkeypatch, capsys, attattr_adv_eval, '--task_name', 'cola', '--data_dir', data, '--model', model_dir,
                         '--output_dir', tmp_path/'o', '--pattern_file', pf, '--num_exp', 48, '--max_patterns', 3, '--no_progress')
    assert code == 0, err
    names = sorted(p.name for p in (tmp_path/'o').iterdir())
    assert names == ['eval_train_pattern_one_exp0-48.json', 'eval_train_pattern_one_exp0-48_report.csv',
                     'eval_train_pattern_one_exp0-48_report.json']
    ev = json.loads((tmp_path/'o'/names[0]).read_text())
    assert len(ev) == 3 and all(set(e) == set(PATTERN_FIELDS) | set(LABELS) for e in ev)
    rep = json.loads((tmp_path/'o'/names[2]).read_text())
    assert {'settings', 'summary', 'top_triggers', 'rows'} <= set(rep) and len(rep['rows']) == 3 * 3

def write_bad(path, obj):
    path.write_text(json.dumps(obj)); return path

def test_bad_input_one_line_exit_2_nothing_written(saved, mined, tmp_path, monkeypatch, capsys):
    model_dir, data = saved
    empty = cola_dir(tmp_path/'empty', [])
    out = tmp_path/'out'
    good = write_bad(tmp_path/'train_adver_pattern_exp0-1.json', mined[:3])
    nofield = write_bad(tmp_path/'train_nofield.json', [{k: v for k, v in mined[0].items() if k != 'seg_pos'}])
    long = dict(mined[0], max_combined_attr=[1., .9], top1position=[1, 2], top2position=[3, 4])
    mine = ['--task_name', 'cola', '--model', model_dir, '--output_dir', out, '--no_progress']
    ev = ['--task_name', 'cola', '--data_dir', data, '--model', model_dir, '--output_dir', out, '--no_progress']
    cases = [
        (attattr_adv_mine, [*mine, '--data_dir', empty], 'no examples'),
        (attattr_adv_mine, [*mine, '--data_dir', data, '--start_exp', 1000], 'no examples'),
        (attattr_adv_mine, [*mine, '--data_dir', data, '--data_type', 'test'], '--data_type'),
        (attattr_adv_mine, [*mine, '--data_dir', data, '--method', 'simpson'], 'unknown method'),
        (attattr_adv_mine, ['--task_name', 'cola', '--data_dir', data, '--output_dir', out], '--model'),
        (attattr_adv_mine, [*mine, '--data_dir', data, '--task_name', 'sts-b'], 'regression'),
        (attattr_adv_eval, [*ev, '--pattern_file', nofield], "missing field 'seg_pos'"),
        (attattr_adv_eval, [*ev, '--pattern_file', write_bad(tmp_path/'train_x.json', '{')], 'expected a JSON list'),
        (attattr_adv_eval, [*ev, '--pattern_file', tmp_path/'train_none.json'], 'not found'),
        (attattr_adv_eval, [*ev, '--pattern_file', good, '--data_type', 'dev'], "does not contain --data_type 'dev'"),
        (attattr_adv_eval, [*ev, '--pattern_file', write_bad(tmp_path/'train_long.json', [long]), '--if_all',
                            '--max_seq_length', 4, '--faithful', 'false'], 'more than max_seq_length'),
        (attattr_adv_eval, [*ev[:3], empty, *ev[4:], '--pattern_file', good], 'no dev examples'),
        (attattr_adv_eval, [*ev, '--pattern_file', good, '--task_name', 'sts-b'], 'regression'),
    ]
    for fn, args, msg in cases:
        code, o, err = cli(monkeypatch, capsys, fn, *args)
        assert code == 2, (args, err)
        assert err.count('\n') == 1 and err.startswith(('attattr-adv-mine: error: ', 'attattr-adv-eval: error: ')), err
        assert msg in err, (msg, err)
        assert not out.exists(), (args, list(out.iterdir()))

def test_eval_cli_faithful_flag(saved, mined, tmp_path, monkeypatch, capsys):
    "--faithful (the default) drops the last pattern when none is below the threshold, as the original; --faithful false keeps it."
    model_dir, data = saved
    pf = tmp_path/'train_adver_pattern_exp0-3.json'
    write_patterns([dict(p, max_combined_attr=[1., .5]) for p in mined[:3]], pf)
    kept = {}
    for name, flags in (('default', []), ('on', ['--faithful']), ('off', ['--faithful', 'false']), ('off2', ['--faithful=no'])):
        code, out, err = cli(monkeypatch, capsys, attattr_adv_eval, '--task_name', 'cola', '--data_dir', data, '--model', model_dir,
                             '--output_dir', tmp_path/name, '--pattern_file', pf, '--control_draws', 0, '--no_progress', *flags)
        assert code == 0, err
        kept[name] = len(json.loads((tmp_path/name/'eval_train_pattern_one_exp0-500.json').read_text()))
    assert kept == dict(default=2, on=2, off=3, off2=3)

# ---------------------------------------------------------------- issue 19: model fingerprint, slices, controls, label check
def test_checkpoint_refuses_another_model(planted, tmp_path):
    "A checkpoint records the model's fingerprint and the attribution settings; resuming with another model is refused."
    import copy
    model, tok = planted
    feats, ck = featurize(make(3, 7), tok, LABELS), tmp_path/'x.partial.jsonl'
    mine_patterns(model, feats[:2], n_steps=2, method='gl', checkpoint=ck, progress=False)
    head = json.loads(ck.read_text().splitlines()[0])['attattr_adv_mine']
    assert len(head['model']) == 16 and head['attribute']['n_steps'] == 2 and head['attribute']['method'] == 'gl'
    other = copy.deepcopy(model)
    with torch.no_grad(): other.classifier.weight.mul_(1.01)
    with pytest.raises(AttattrError, match='another run \\(model differs'):
        mine_patterns(other, feats[:2], n_steps=2, method='gl', checkpoint=ck, progress=False)
    with pytest.raises(AttattrError, match="another run \\(attribute.n_steps differs: was 2, now 'auto'\\)"):
        mine_patterns(model, feats[:2], n_steps='auto', tol=1e-2, checkpoint=ck, progress=False)

def test_mining_auto_and_exclude(planted):
    model, tok = planted
    f = featurize([InputExample('x', f'{A} red {B} blue green', None, '1')], tok, LABELS)[0]
    rec = mine_example(model, f, n_steps='auto', tol=1e-2)
    assert set(rec['top1pattern']) & {A, B}
    ex = mine_example(model, f, n_steps=8, method='gauss_legendre', exclude=(A, B))
    assert not set(ex['top1pattern'] + ex['top2pattern']) & {A, B}

def test_lexicon_finds_the_planted_words(planted):
    "With no attribution, log-odds on training data name the pair that decides the label; the label check flags it."
    model, tok = planted
    lex = lexicon_log_odds(make(400, 3), tok, LABELS)
    words = label_lexicon(lex, 2)
    assert set(words['1']) == {A, B}
    chk = label_check(model, tok, Trigger([A, B], [0, 0], [.3, .6]), LABELS, lex)
    assert chk['lexicon_label'] == '1' and chk['label_bearing'] == '1'
    toks, p = token_frequencies(make(40, 3), tok)
    assert abs(p.sum() - 1) < 1e-12 and len(toks) == len(p) and not {'[CLS]', '[SEP]'} & set(toks)

def test_stronger_controls_paired(planted, mined):
    model, tok = planted
    exs = make(40, 9)
    rep = evaluate_attack(model, tok, exs, LABELS, mined, max_patterns=2, progress=False, control_draws=2,
                          in_domain=token_frequencies(make(200, 3), tok), lexicon=lexicon_log_odds(make(400, 3), tok, LABELS))
    c = rep.correct[0]
    assert set(c) == {'trigger', 'random', 'in_domain', 'lexicon'} and all(len(v) == len(exs) for v in c.values())
    row = [r for r in rep.rows if r['pattern'] == 0 and r['group'] == '0'][0]
    m = rep.gold == 0
    assert abs(row['lexicon_acc'] - c['lexicon'][m].mean()) < 1e-12 and abs(row['acc'] - c['trigger'][m].mean()) < 1e-12
    # label-1 words inserted into label-0 examples relabel them: the lexicon control is as strong as the planted trigger
    assert row['lexicon_acc'] < 0.5

def test_eval_cli_slice(saved, mined, tmp_path, monkeypatch, capsys):
    model_dir, data = saved
    pf = tmp_path/'train_adver_pattern_exp0-48.json'; write_patterns(mined, pf)
    code, out, err = cli(monkeypatch, capsys, attattr_adv_eval, '--task_name', 'cola', '--data_dir', data, '--model', model_dir,
                         '--output_dir', tmp_path/'o', '--pattern_file', pf, '--max_patterns', 2, '--no_progress',
                         '--eval_start', 4, '--eval_num', 8, '--control_draws', 0)
    assert code == 0, err
    rep = json.loads((tmp_path/'o'/'eval_train_pattern_one_exp0-500_report.json').read_text())
    assert rep['settings']['n_examples'] == 8 and rep['settings']['eval_start'] == 4
    code, out, err = cli(monkeypatch, capsys, attattr_adv_eval, '--task_name', 'cola', '--data_dir', data, '--model', model_dir,
                         '--output_dir', tmp_path/'p', '--pattern_file', pf, '--eval_start', 1000, '--no_progress')
    assert code == 2 and 'no dev examples in [1000' in err and not (tmp_path/'p').exists()

# ---------------------------------------------------------------- issue 20: one writer per checkpoint, empty pattern files
def test_checkpoint_lock(planted, tmp_path):
    "A second live process mining into the same checkpoint stops with one line naming the holder; nothing is appended."
    model, tok = planted
    feats, ck = featurize(make(2, 7), tok, LABELS), tmp_path/'x.partial.jsonl'
    holder = subprocess.Popen([sys.executable, '-c', "import time; from attattr.core import folder_lock, LOCK_FILE\n"
                               f"with folder_lock({str(tmp_path)!r}, LOCK_FILE + '-x.partial.jsonl'): print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        with pytest.raises(AttattrError, match=f'another attattr process \\(pid {holder.pid}\\)'):
            mine_patterns(model, feats, n_steps=2, method='gl', checkpoint=ck, progress=False)
        assert not ck.exists()
    finally: holder.kill(); holder.wait()
    assert len(mine_patterns(model, feats, n_steps=2, method='gl', checkpoint=ck, progress=False)) >= 0  # lock taken over
    assert ck.exists()

def test_empty_pattern_file(tmp_path):
    "An empty pattern file is an error naming the file, not an empty report."
    p = tmp_path/'empty.json'; p.write_text('[]\n')
    with pytest.raises(AttattrError, match='empty.json: no patterns'): read_patterns(p)
