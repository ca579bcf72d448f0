"attattr.runs end to end: a run killed with SIGKILL and resumed, torchrun with two gloo ranks, bit-identical CPU reruns, CLI errors, a regression task."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch
from attattr.attribution import FAITHFUL, attribute
from attattr.data import featurize, get_processor
from attattr.formats import read_layers_json, read_tokens_json
from attattr.testing import tiny_model, tiny_tokenizer
from attattr.runs import attribute_split, index_path, load_split_results, read_index, split_index

BIN = Path(sys.executable).parent  # the venv's console scripts
N = 16  # examples in the tiny split
SHARD = 3  # examples per shard
WORDS = "the a movie film is was good bad great awful man woman dog cat plays runs in park house very not".split()

def sentence(i):
    "A deterministic lowercase sentence of 6 to 30 words."
    return ' '.join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(6 + (i * 5) % 25))

@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    "A tiny SST-2 style split and a tiny model saved as a Hugging Face folder."
    d = tmp_path_factory.mktemp('runs')
    (d/'data').mkdir()
    (d/'data'/'dev.tsv').write_text('sentence\tlabel\n' + ''.join(f"{sentence(i)}\t{i % 2}\n" for i in range(N)))
    model, tok = tiny_model(num_labels=2, layers=4, hidden=64), tiny_tokenizer()
    model.save_pretrained(d/'model'); tok.save_pretrained(d/'model')
    return d

def env():
    "One thread per process, so every run does the same floating-point operations in the same order."
    return dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', TOKENIZERS_PARALLELISM='false', HF_HUB_OFFLINE='1')

def attr_cmd(d, out, *extra):
    return [str(BIN/'attattr-attr'), '--task_name', 'sst-2', '--data_dir', str(d/'data'), '--model', str(d/'model'),
            '--all_examples', '--get_att_score', '--shard_size', str(SHARD), '--output_dir', str(out), '--quiet', *extra]

def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=300, **kw)
    assert p.returncode == 0, p.stderr[-2000:]
    return p

def assert_same(a, b):
    "Two run folders hold exactly the same examples with bit-identical tensors."
    ra, rb = load_split_results(a), load_split_results(b)
    assert list(ra) == list(rb) == list(range(N))
    for i in ra:
        for k in ('attributions', 'attentions', 'logits', 'delta', 'f_baseline'):
            assert torch.equal(getattr(ra[i], k), getattr(rb[i], k)), (i, k)
        assert ra[i].tokens == rb[i].tokens

@pytest.fixture(scope='module')
def full(setup):
    "An uninterrupted single-process run of the whole split (the CLI's dataset mode, original settings)."
    run(attr_cmd(setup, setup/'full'))
    return setup/'full'

def test_full_run(setup, full):
    recs = split_index(full)
    assert [r['index'] for r in recs] == list(range(N))
    assert sum(len(read_index(p)) for p in full.glob('index-r*.jsonl')) == N  # one line per example
    assert json.loads((full/'run.json').read_text())['attribute']['n_steps'] == FAITHFUL['n_steps']
    # the stored results are those of `attribute` with the original's settings
    model = tiny_model(num_labels=2, layers=4, hidden=64)
    f = featurize(get_processor('sst-2').get_examples(setup/'data')[5:6], tiny_tokenizer(), ['0', '1'])[0]
    torch.testing.assert_close(load_split_results(full, [5])[5].attributions, attribute(model, f, **FAITHFUL).attributions,
                               rtol=1e-5, atol=1e-7)

def test_sigkill_and_resume(setup, full):
    out = setup/'crash'
    p = subprocess.Popen(attr_cmd(setup, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
    t0, k = time.time(), 0
    while time.time() - t0 < 120 and p.poll() is None:
        k = len(read_index(index_path(out, 0)))
        if k >= SHARD + 1: break  # killed after two shards are committed, while a third is being computed
        time.sleep(0.002)
    p.send_signal(signal.SIGKILL); p.wait()
    assert p.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    # the folder is consistent: every committed example's tensors are in its shard
    part = load_split_results(out)
    assert SHARD + 1 <= len(part) < N and list(part) == sorted(part)
    res = run(attr_cmd(setup, out))
    assert f"{N - len(part)} examples attributed, {len(part)} already there" in res.stdout
    assert sum(len(read_index(q)) for q in out.glob('index-r*.jsonl')) == N  # none lost, none duplicated
    assert not list(out.rglob('*.tmp'))
    assert_same(out, full)

def test_torchrun_two_ranks(setup, full):
    out = setup/'two'
    run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', '--no-python',
         *attr_cmd(setup, out)], cwd=setup)
    assert sorted(p.name for p in out.glob('index-r*.jsonl')) == ['index-r0.jsonl', 'index-r1.jsonl']
    assert [r['index'] for r in read_index(index_path(out, 1))] == list(range(1, N, 2))
    assert_same(out, full)

def test_reruns_bit_identical(setup, tmp_path):
    model, tok = tiny_model(num_labels=2), tiny_tokenizer()
    a = attribute_split(model, tok, 'sst-2', setup/'data', tmp_path/'a', n_steps=8, num_examples=6, progress=False)
    b = attribute_split(model, tok, 'sst-2', setup/'data', tmp_path/'b', n_steps=8, num_examples=6, shard_size=1, progress=False)
    assert a['attributed'] == b['attributed'] == 6
    ra, rb = load_split_results(tmp_path/'a'), load_split_results(tmp_path/'b')
    for i in ra: assert torch.equal(ra[i].attributions, rb[i].attributions) and torch.equal(ra[i].delta, rb[i].delta)

def cli(monkeypatch, script, *args):
    "Run a console-script function in this process with `args` as its command line; its exit status."
    from attattr import core
    monkeypatch.setattr(sys, 'argv', [script, *map(str, args)])
    try: return getattr(core, script.replace('-', '_'))()
    except SystemExit as e: return e.code

def test_single_example_and_tokens_cli(setup, tmp_path, monkeypatch):
    "The original's command lines, with the original's flag spellings."
    assert cli(monkeypatch, 'attattr-attr', '--task_name', 'sst-2', '--data_dir', setup/'data', '--model_file', setup/'model',
               '--example_index', '3', '--get_att_attr', '--get_att_score', '--output_dir', tmp_path) == 0
    assert cli(monkeypatch, 'attattr-tokens', '--task_name', 'sst-2', '--data_dir', setup/'data', '--model', setup/'model',
               '--num_examples', '5', '--output_dir', tmp_path, '--quiet') == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ['att_score_zero_base_exp3.json', 'attr_zero_base_exp3.json',
                                                          'tokens_and_pred_5.json']
    recs = read_tokens_json(tmp_path/'tokens_and_pred_5.json')
    n = len(recs[3]['tokens'])
    assert read_layers_json(tmp_path/'attr_zero_base_exp3.json').shape == (4, 4, n, n)
    assert [r['golden'] for r in recs] == ['0', '1', '0', '1', '0']

BAD = [('attattr-attr', ['--data_dir', '{d}/nope', '--get_att_attr'], 'attattr-attr: error: file not found: {d}/nope/dev.tsv'),
       ('attattr-attr', ['--example_index', '99', '--get_att_attr'], 'attattr-attr: error: --example_index 99 out of range'),
       ('attattr-attr', ['--task_name', 'imdb', '--get_att_attr'], "attattr-attr: error: unknown task 'imdb'"),
       ('attattr-attr', ['--model', '{d}/nope', '--get_att_attr'], 'attattr-attr: error: {d}/nope: model path not found'),
       ('attattr-tokens', ['--data_dir', '{d}/nope'], 'attattr-tokens: error: file not found: {d}/nope/dev.tsv'),
       ('attattr-tokens', ['--task_name', 'imdb'], "attattr-tokens: error: unknown task 'imdb'")]

def bad_cmd(setup, out, args):
    "A command line with the good flags of the tiny setup, overridden by `args`."
    flags = {'--task_name': 'sst-2', '--data_dir': str(setup/'data'), '--model': str(setup/'model'), '--output_dir': str(out)}
    extra = [a.format(d=setup) for a in args]
    for k in extra: flags.pop(k, None)
    return [x for kv in flags.items() for x in kv] + extra

@pytest.mark.parametrize('script,args,msg', BAD)
def test_cli_bad_input(setup, tmp_path, monkeypatch, capsys, script, args, msg):
    assert cli(monkeypatch, script, *bad_cmd(setup, tmp_path/'out', args)) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith(msg.format(d=setup)), err
    assert not (tmp_path/'out').exists()

def test_cli_bad_input_console_script(setup, tmp_path):
    "The installed console script: one line on stderr, exit status 2, nothing written."
    script, args, msg = BAD[0]
    p = subprocess.run([str(BIN/script), *bad_cmd(setup, tmp_path/'out', args)], capture_output=True, text=True, env=env(), timeout=120)
    assert (p.returncode, p.stderr.count('\n')) == (2, 1) and p.stderr.startswith(msg.format(d=setup)), p.stderr
    assert not (tmp_path/'out').exists()

def test_dataset_cli_batched_equals_single(setup, tmp_path, monkeypatch):
    "--examples_per_call (several examples per attribute call) and --internal_batch_size change nothing but the cost."
    common = ['--task_name', 'sst-2', '--data_dir', setup/'data', '--model', setup/'model', '--num_examples', '5',
              '--n_steps', '8', '--quiet']
    assert cli(monkeypatch, 'attattr-attr', *common, '--output_dir', tmp_path/'one') == 0
    assert cli(monkeypatch, 'attattr-attr', *common, '--examples_per_call', '3', '--internal_batch_size', '3',
               '--output_dir', tmp_path/'three') == 0
    one, three = load_split_results(tmp_path/'one'), load_split_results(tmp_path/'three')
    assert sorted(one) == sorted(three) == list(range(5))
    for i in one:
        torch.testing.assert_close(three[i].attributions, one[i].attributions, rtol=1e-4,
                                   atol=1e-5 * one[i].attributions.abs().max().item())

@pytest.fixture(scope='module')
def stsb(tmp_path_factory):
    "A tiny regression model (one output) and an STS-B-layout dev file (index, sentence1, sentence2, score)."
    d = tmp_path_factory.mktemp('stsb')
    (d/'data').mkdir()
    (d/'data'/'dev.tsv').write_text('index\tsentence1\tsentence2\tscore\n' + ''.join(
        f"{i}\t{sentence(i)}\t{sentence(i + 7)}\t{i % 5 * 1.25:.2f}\n" for i in range(6)))
    tiny_model(num_labels=1).save_pretrained(d/'model'); tiny_tokenizer().save_pretrained(d/'model')
    return d

def test_stsb_attr_tokens_tree(stsb, tmp_path, monkeypatch):
    "sts-b through attattr-attr (the score is attributed), attattr-tokens (scores) and attattr-tree on their files."
    common = ['--task_name', 'sts-b', '--data_dir', stsb/'data', '--model', stsb/'model']
    assert cli(monkeypatch, 'attattr-attr', *common, '--output_dir', tmp_path, '--example_index', '2', '--get_att_attr') == 0
    assert cli(monkeypatch, 'attattr-tokens', *common, '--output_dir', tmp_path, '--num_examples', '6', '--quiet') == 0
    f = featurize(get_processor('sts-b').get_examples(stsb/'data')[2:3], tiny_tokenizer(), None)[0]
    ref = attribute(tiny_model(num_labels=1), f, output='logit', **FAITHFUL)
    got = torch.from_numpy(read_layers_json(tmp_path/'attr_zero_base_exp2.json'))
    torch.testing.assert_close(got, ref.attributions, rtol=1e-5, atol=1e-7)
    assert got.abs().sum() > 0  # the score's attribution (a softmax over one output would give zeros)
    recs = read_tokens_json(tmp_path/'tokens_and_pred_6.json')
    assert [r['golden'] for r in recs] == [i % 5 * 1.25 for i in range(6)] and isinstance(recs[2]['pred'], float)
    assert abs(recs[2]['pred'] - ref.logits.item()) < 1e-5
    # dataset mode
    assert cli(monkeypatch, 'attattr-attr', *common, '--output_dir', tmp_path/'split', '--num_examples', '3', '--n_steps', '4',
               '--quiet') == 0
    res = load_split_results(tmp_path/'split')
    assert sorted(res) == [0, 1, 2] and {r.output for r in res.values()} == {'logit'}
    assert [r['pred'] for r in split_index(tmp_path/'split')] == [pytest.approx(r['pred'], abs=1e-5) for r in recs[:3]]
    # the tree of the regression example, from the two files
    from attattr.core import attattr_tree
    monkeypatch.setattr(sys, 'argv', ['attattr-tree', '--attr_file', str(tmp_path/'attr_zero_base_exp2.json'), '--tokens_file',
                                      str(tmp_path/'tokens_and_pred_6.json'), '--example_index', '2', '--formats', 'png'])
    attattr_tree()
    assert (tmp_path/'tree_exp2.png').exists() and (tmp_path/'tree_exp2.graphml').exists()

def test_stsb_bad_target(stsb, tmp_path, monkeypatch, capsys):
    "A regression task has one output: --target gold (or another class) is one clear error, nothing written."
    for t in ('gold', '1'):
        assert cli(monkeypatch, 'attattr-attr', '--task_name', 'sts-b', '--data_dir', stsb/'data', '--model', stsb/'model',
                   '--output_dir', tmp_path/'out', '--get_att_attr', '--target', t) == 2
        err = capsys.readouterr().err
        assert err.count('\n') == 1 and 'regression task' in err, err
    assert not (tmp_path/'out').exists()

def test_auto_steps_recorded_and_resume_refuses_other_tol(setup, tmp_path, monkeypatch, capsys):
    "--n_steps auto --tol T: the run records both; a resume with another tolerance (or a fixed m) is refused in one line."
    common = ['--task_name', 'sst-2', '--data_dir', setup/'data', '--model', setup/'model', '--num_examples', '2', '--quiet',
              '--output_dir', tmp_path]
    assert cli(monkeypatch, 'attattr-attr', *common, '--n_steps', 'auto', '--tol', '0.05') == 0
    a = json.loads((tmp_path/'run.json').read_text())['attribute']
    assert (a['n_steps'], a['tol'], a['rule']) == ('auto', 0.05, 'adaptive_clenshaw_curtis')
    capsys.readouterr()
    for other in (['--n_steps', 'auto', '--tol', '0.01'], ['--n_steps', '8']):
        assert cli(monkeypatch, 'attattr-attr', *common, *other) == 2
        err = capsys.readouterr().err
        assert err.count('\n') == 1 and 'the folder holds a run with other settings' in err, err
    assert cli(monkeypatch, 'attattr-attr', *common, '--n_steps', 'auto', '--tol', '0.05', '--num_examples', '3') == 0
    assert sorted(load_split_results(tmp_path)) == [0, 1, 2]
    run = json.loads((tmp_path/'run.json').read_text())  # a folder written by the first rule (adaptive Simpson) recorded none
    del run['attribute']['rule']; (tmp_path/'run.json').write_text(json.dumps(run))
    assert cli(monkeypatch, 'attattr-attr', *common, '--n_steps', 'auto', '--tol', '0.05', '--num_examples', '4') == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and "other settings (attribute.rule: None, asked 'adaptive_clenshaw_curtis')" in err, err

def test_second_writer_stops(setup, tmp_path, monkeypatch, capsys):
    "A second process on a run folder whose lock a live process holds stops at once with a clear message, writing nothing."
    out = tmp_path/'run'
    holder = subprocess.Popen([sys.executable, '-c', "import sys, time; from attattr.core import folder_lock\n"
                               f"with folder_lock({str(out)!r}, '.attattr.lock-r0'): print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        assert cli(monkeypatch, 'attattr-attr', '--task_name', 'sst-2', '--data_dir', setup/'data', '--model', setup/'model',
                   '--num_examples', '2', '--n_steps', '4', '--quiet', '--output_dir', out) == 2
        err = capsys.readouterr().err
        assert err.count('\n') == 1 and f'(pid {holder.pid}) is writing into this folder' in err, err
        assert sorted(p.name for p in out.iterdir()) == ['.attattr.lock-r0']
    finally: holder.kill(); holder.wait()
    # the holder is gone (killed): its lock is taken over
    assert cli(monkeypatch, 'attattr-attr', '--task_name', 'sst-2', '--data_dir', setup/'data', '--model', setup/'model',
               '--num_examples', '2', '--n_steps', '4', '--quiet', '--output_dir', out) == 0
    assert sorted(load_split_results(out)) == [0, 1]

def test_resume_repairs_duplicate_records(setup, full, tmp_path):
    "Duplicate index records (two writers at once, before the lock) are repaired by a resume."
    import shutil
    out = tmp_path/'dup'
    shutil.copytree(full, out)
    idx = index_path(out, 0)
    lines = idx.read_text().splitlines(keepends=True)
    idx.write_text(''.join(lines + lines[:4]))
    with pytest.raises(Exception, match='is also in'): split_index(out)
    run(attr_cmd(setup, out))
    assert [r['index'] for r in split_index(out)] == list(range(N))
    assert_same(full, out)

def test_resume_refuses_changed_text(setup, tmp_path, monkeypatch, capsys):
    "An example edited in the TSV after it was attributed is not kept silently: the resume refuses, naming it."
    (tmp_path/'data').mkdir()
    rows = [f"{sentence(i)}\t{i % 2}\n" for i in range(4)]
    (tmp_path/'data'/'dev.tsv').write_text('sentence\tlabel\n' + ''.join(rows))
    common = ['--task_name', 'sst-2', '--data_dir', tmp_path/'data', '--model', setup/'model', '--n_steps', '4', '--quiet',
              '--output_dir', tmp_path/'run']
    assert cli(monkeypatch, 'attattr-attr', *common, '--num_examples', '2') == 0
    rows[1] = "an edited sentence\t1\n"
    (tmp_path/'data'/'dev.tsv').write_text('sentence\tlabel\n' + ''.join(rows))
    capsys.readouterr()
    assert cli(monkeypatch, 'attattr-attr', *common, '--all_examples') == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'example 1' in err and 'changed since it was attributed' in err, err

def test_outputs_all_or_nothing(setup, tmp_path, monkeypatch, capsys, full_disk_at):
    "The second output cannot be written (a full disk): the first is not left behind, and the error is one line naming it."
    full_disk_at(2)
    assert cli(monkeypatch, 'attattr-attr', '--task_name', 'sst-2', '--data_dir', setup/'data', '--model', setup/'model',
               '--example_index', '3', '--get_att_attr', '--get_att_score', '--n_steps', '4', '--output_dir', tmp_path) == 2
    err = capsys.readouterr().err
    assert err == f"attattr-attr: error: {tmp_path/'att_score_zero_base_exp3.json'}: no space left on the device\n", err
    assert list(tmp_path.iterdir()) == []

def test_longer_than_the_positions(setup, tmp_path, monkeypatch, capsys):
    "--max_seq_length above the model's position embeddings: one line naming the limit, exit 2, nothing written (#20 item 11)."
    out, data = tmp_path/'long', tmp_path/'data'
    data.mkdir(); (data/'dev.tsv').write_text('sentence\tlabel\n' + ' '.join(sentence(i) for i in range(12)) + '\t1\n')  # ~200 words
    code = cli(monkeypatch, 'attattr-tokens', '--task_name', 'sst-2', '--data_dir', data, '--model', setup/'model',
               '--output_dir', out, '--max_seq_length', 400, '--num_examples', 1, '--quiet')
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "more than the model's 160 positions" in err, err
    assert not out.exists() or not any(out.iterdir())
