"Tests of `attattr.data`: every task's TSV layout, the error messages, atomic writes, file formats, featurisation."
import json, os, random
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertTokenizer, RobertaTokenizer
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

from attattr.core import *
from attattr.formats import *
from attattr.data import *
from attattr.data import PROCESSORS, NLI_LABELS

ROOT = Path(__file__).resolve().parents[1]
MINILM = ROOT/'examples/models/minilm-l6-nli'
MNLI_DEV = ROOT/'examples/data/mnli'
SHARED = Path('/work/shared/data')
WORDS = ('the a an cat dog man woman sat sit on mat is are was ##s ##ing ##ed jump run walk play park in to of and '
         'not no yes . , ! big small red blue green house car')

# ---------------------------------------------------------------- helpers
def tsv(folder, name, rows):
    "Write `rows` as a TSV file and return its path."
    folder.mkdir(parents=True, exist_ok=True)
    p = folder/name
    p.write_text(''.join('\t'.join(r) + '\n' for r in rows), encoding='utf-8')
    return p

def err(f, *a, **kw):
    "The one-line message of the `AttattrError` that `f(*a, **kw)` raises."
    with pytest.raises(AttattrError) as e: f(*a, **kw)
    msg = str(e.value)
    assert '\n' not in msg, msg
    return msg

@pytest.fixture(scope='module')
def bert(tmp_path_factory):
    "A tiny lowercasing WordPiece tokenizer built from a vocab.txt written here."
    d = tmp_path_factory.mktemp('tok')
    (d/'vocab.txt').write_text('\n'.join(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] + WORDS.split()) + '\n')
    return BertTokenizer(vocab=str(d/'vocab.txt'))

@pytest.fixture(scope='module')
def roberta():
    "A tiny byte-level BPE tokenizer with RoBERTa's special tokens."
    vocab = {t: i for i, t in enumerate(['<s>', '<pad>', '</s>', '<unk>', '<mask>', 'c', 'a', 't', 'Ġ', 'd', 'o', 'g',
                                         'ca', 'cat', 'Ġd', 'Ġdo', 'Ġdog', 'Ġc', 'Ġca', 'Ġcat'])}
    merges = [('Ġ', 'c'), ('Ġc', 'a'), ('Ġca', 't'), ('Ġ', 'd'), ('Ġd', 'o'), ('Ġdo', 'g'), ('c', 'a'), ('ca', 't')]
    return RobertaTokenizer(vocab=vocab, merges=merges)

# ---------------------------------------------------------------- processors: every task's layout
MNLI_HEAD = ['index', 'promptID', 'pairID', 'genre', 's1bp', 's2bp', 's1p', 's2p', 'sentence1', 'sentence2', 'label1', 'gold_label']
def mnli_row(i, a, b, lab): return [str(i), '', '', 'g', '', '', '', '', a, b, lab, lab]

TASKS = {  # task -> (file, rows, expected (guid, text_a, text_b, label) of the dev/first split)
    'cola': ('dev.tsv', [['gj04', '1', '', 'The cat sat.'], ['gj04', '0', '*', 'Cat the sat.']],
             [('dev-1', 'The cat sat.', None, '1'), ('dev-2', 'Cat the sat.', None, '0')]),  # guid: the row number
    'mnli': ('dev_matched.tsv', [MNLI_HEAD, mnli_row(3, 'A man.', 'A woman.', 'neutral')],
             [('dev_matched-3', 'A man.', 'A woman.', 'neutral')]),
    'mnli-mm': ('dev_mismatched.tsv', [MNLI_HEAD, mnli_row(5, 'A "man".', 'Dog', 'contradiction')],
                [('dev_mismatched-5', 'A "man".', 'Dog', 'contradiction')]),
    'mrpc': ('dev.tsv', [['Quality', '#1 ID', '#2 ID', '#1 String', '#2 String'], ['1', '11', '12', 'He ran.', 'He runs.']],
             [('dev-1', 'He ran.', 'He runs.', '1')]),
    'rte': ('dev.tsv', [['index', 'sentence1', 'sentence2', 'label'], ['0', 'A', 'B', 'not_entailment']],
            [('dev-0', 'A', 'B', 'not_entailment')]),
    'sst-2': ('dev.tsv', [['sentence', 'label'], ['a fine film ', '1']], [('dev-1', 'a fine film ', None, '1')]),
    'qqp': ('dev.tsv', [['id', 'qid1', 'qid2', 'question1', 'question2', 'is_duplicate'],
                        ['9', '1', '2', '"Why?"', 'Why not?', '0'], ['10', 'broken row', '1']],
            [('dev-9', 'Why?', 'Why not?', '0')]),
    'qnli': ('dev.tsv', [['index', 'question', 'sentence', 'label'], ['4', 'Who?', 'Me.', 'entailment']],
             [('dev-4', 'Who?', 'Me.', 'entailment')]),
    'wnli': ('dev.tsv', [['index', 'sentence1', 'sentence2', 'label'], ['2', 'It sat.', 'The cat sat.', '1']],
             [('dev-2', 'It sat.', 'The cat sat.', '1')]),
    'sts-b': ('dev.tsv', [['index', 'genre', 'filename', 'year', 'old_index', 'source1', 'source2', 'sentence1', 'sentence2', 'score'],
                          ['0', 'main', 'f', '2012', '1', 'n', 'n', 'A plane.', 'An air plane.', '5.000']],
              [('dev-0', 'A plane.', 'An air plane.', '5.000')]),
    'scitail': ('scitail_1.0_dev.tsv', [['Wet cats.', 'Cats get wet.', 'entails'], ['Dry.', 'Wet.', 'neutral']],
                [('dev-0', 'Wet cats.', 'Cats get wet.', 'entails'), ('dev-1', 'Dry.', 'Wet.', 'neutral')]),
    'snli': ('dev.tsv', [MNLI_HEAD, mnli_row(0, 'Two dogs.', 'Animals.', 'entailment')], [('dev-0', 'Two dogs.', 'Animals.', 'entailment')]),
}

LABELS = {'cola': ['0', '1'], 'mnli': NLI_LABELS, 'mnli-mm': NLI_LABELS, 'mrpc': ['0', '1'], 'rte': ['entailment', 'not_entailment'],
          'sst-2': ['0', '1'], 'qqp': ['0', '1'], 'qnli': ['entailment', 'not_entailment'], 'wnli': ['0', '1'], 'sts-b': None,
          'scitail': ['neutral', 'entails'], 'snli': NLI_LABELS}

def test_label_lists_and_metrics():
    assert NLI_LABELS == ['contradiction', 'entailment', 'neutral']
    for t, labels in LABELS.items():
        p = get_processor(t.upper())
        assert (p.name, p.labels, p.is_regression) == (t, labels, labels is None)
    assert {t: p.metric for t, p in PROCESSORS.items() if p.metric != 'acc'} == {'cola': 'mcc', 'sts-b': 'pearson'}
    assert get_processor('mnli').files == dict(train='train.tsv', dev='dev_matched.tsv',
                                               dev_mismatched='dev_mismatched.tsv', test='test_matched.tsv')
    assert get_processor('scitail').files['train'] == 'scitail_1.0_train.tsv'

@pytest.mark.parametrize('task', list(TASKS))
def test_task_layout(task, tmp_path):
    name, rows, want = TASKS[task]
    if task == 'cola': rows = [['gj04', '1', '', 'GLUE CoLA has no header: line 1 is lost, as in the original']] + rows
    tsv(tmp_path, name, rows)
    if task == 'qqp':
        with pytest.warns(UserWarning, match='skipped 1 rows without exactly 6 columns'): exs = read_examples(task, tmp_path)
    else: exs = read_examples(task, tmp_path)
    assert [(e.guid, e.text_a, e.text_b, e.label) for e in exs] == want

def test_mnli_splits(tmp_path):
    tsv(tmp_path, 'train.tsv', [MNLI_HEAD, mnli_row(1, 'a', 'b', 'entailment')])
    tsv(tmp_path, 'dev_mismatched.tsv', [MNLI_HEAD, mnli_row(2, 'c', 'd', 'neutral')])
    tsv(tmp_path, 'test_matched.tsv', [['index', 'x', 'sentence1', 'sentence2'], ['7', 'x', 'e', 'f']])
    assert read_examples('mnli', tmp_path, 'train')[0].guid == 'train-1'
    assert read_examples('mnli', tmp_path, 'dev_mismatched')[0].text_a == 'c'
    assert read_examples('mnli', tmp_path, 'test') == [InputExample('test_matched-7', 'e', 'f', None)]
    assert 'dev_matched.tsv' in err(read_examples, 'mnli', tmp_path)

def test_test_splits(tmp_path):
    tsv(tmp_path, 'test.tsv', [['index', 'sentence'], ['0', 'a good film']])
    assert read_examples('sst-2', tmp_path, 'test') == [InputExample('test-1', 'a good film', None, None)]
    assert read_examples('cola', tmp_path, 'test')[0].text_a == 'a good film'
    tsv(tmp_path, 'test.tsv', [['index', 'sentence1', 'sentence2'], ['0', 'x', 'y']])
    for t in ('rte', 'qnli', 'wnli', 'sts-b', 'mrpc', 'qqp'):
        assert [(e.text_a, e.text_b, e.label) for e in read_examples(t, tmp_path, 'test')] == [('x', 'y', None)], t
    tsv(tmp_path, 'scitail_1.0_test.tsv', [['p', 'h', 'neutral']])  # SciTail's test file is labelled
    assert read_examples('scitail', tmp_path, 'test')[0].label == 'neutral'

def test_limit_and_blank_lines(tmp_path):
    tsv(tmp_path, 'dev.tsv', [['sentence', 'label'], ['a', '1'], [''], ['b', '0'], ['c', '1']])
    assert [e.text_a for e in read_examples('sst-2', tmp_path)] == ['a', 'b', 'c']
    assert [e.text_a for e in read_examples('sst-2', tmp_path, limit=2)] == ['a', 'b']

def test_quotes_kept(tmp_path):
    tsv(tmp_path, 'dev.tsv', [['sentence', 'label'], ['"a "quoted" film', '1']])
    assert read_examples('sst-2', tmp_path)[0].text_a == '"a "quoted" film'  # quotechar=None

# ---------------------------------------------------------------- processors: errors
def test_errors(tmp_path):
    assert err(get_processor, 'mnlii') == ("unknown task 'mnlii'; expected one of ['cola', 'mnli', 'mnli-mm', 'mrpc', 'rte', "
                                           "'sst-2', 'qqp', 'qnli', 'wnli', 'sts-b', 'scitail', 'snli']")
    assert err(read_examples, 'rte', tmp_path) == f"file not found: {tmp_path/'dev.tsv'}"
    assert 'no split' in err(read_examples, 'rte', tmp_path, 'validation')
    head = ['index', 'sentence1', 'sentence2', 'label']
    p = tsv(tmp_path, 'dev.tsv', [head, ['0', 'a', 'b', 'entailment'], ['1', 'a', 'entailment']])
    assert err(read_examples, 'rte', tmp_path) == f"{p} line 3: expected at least 4 tab-separated columns, got 3"
    tsv(tmp_path, 'dev.tsv', [head, ['0', 'a', 'b', 'Entailment']])
    assert err(read_examples, 'rte', tmp_path) == (f"{p} line 2: field 'label' (label) has unknown value 'Entailment'; "
                                                   "expected one of ['entailment', 'not_entailment']")
    tsv(tmp_path, 'dev.tsv', [head, ['0', 'a', '', 'entailment']])
    assert err(read_examples, 'rte', tmp_path) == f"{p} line 2: field 'sentence2' (text_b) is empty"
    tsv(tmp_path, 'dev.tsv', [head, ['0', 'a', 'b', 'entailment', 'extra']])  # header of another width: column numbers
    assert err(read_examples, 'rte', tmp_path, split='dev', limit=None) == (
        f"{p} line 2: column 4 (label) has unknown value 'extra'; expected one of ['entailment', 'not_entailment']")
    tsv(tmp_path, 'dev.tsv', [['i', 'g', 'f', 'y', 'o', 's1', 's2', 'sentence1', 'sentence2', 'score'],
                              ['0', 'm', 'f', '1', '1', 'n', 'n', 'a', 'b', 'high']])
    assert err(read_examples, 'sts-b', tmp_path) == f"{p} line 2: field 'score' (label) value 'high' is not a number"
    p = tsv(tmp_path, 'dev_matched.tsv', [MNLI_HEAD, mnli_row(0, 'a', 'b', 'neutral'), mnli_row(1, 'a', 'b', '-')])
    assert "line 3: field 'gold_label' (label) has unknown value '-'" in err(read_examples, 'mnli', tmp_path)
    p.write_bytes(b'h\n\xfe\xff\n')
    assert 'not UTF-8' in err(read_examples, 'mnli', tmp_path)

# ---------------------------------------------------------------- atomic writes and file formats
def test_atomic_write_fault(tmp_path, monkeypatch):
    p = tmp_path/'out.json'
    write_json_atomic({'ok': 1}, p)
    def bad_fsync(fd): raise OSError('disk full')
    monkeypatch.setattr(os, 'fsync', bad_fsync)
    with pytest.raises(OSError, match='disk full'): write_json_atomic({'ok': 2}, p)
    assert json.loads(p.read_text()) == {'ok': 1} and os.listdir(tmp_path) == ['out.json']
    monkeypatch.undo()
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(p) as f: f.write('partial'); raise KeyboardInterrupt
    assert json.loads(p.read_text()) == {'ok': 1} and os.listdir(tmp_path) == ['out.json']
    with atomic_write(tmp_path/'new.txt', newline='\r\n') as f: f.write('a\n')
    assert (tmp_path/'new.txt').read_bytes() == b'a\r\n'

def test_layers_json(tmp_path):
    a = np.random.default_rng(0).random((3, 2, 4, 4)).astype(np.float32)
    for arr in (a, torch.from_numpy(a), torch.from_numpy(a).double()):
        write_layers_json(arr, tmp_path/'attr.json')
        back = read_layers_json(tmp_path/'attr.json')
        assert back.dtype == np.float32 and np.array_equal(back, a)
    lines = (tmp_path/'attr.json').read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[1]) == a[1].astype(np.float64).tolist()  # the original's `json.dumps(t.tolist())`
    (tmp_path/'bad.json').write_text(lines[0] + '\n' + json.dumps([[[1.0, 2.0], [3.0]]]) + '\n')
    assert err(read_layers_json, tmp_path/'bad.json').startswith(f"{tmp_path/'bad.json'} line 2: expected a nested list [heads][n][n]")
    (tmp_path/'bad.json').write_text(lines[0] + '\n' + lines[1][:-3] + '\n')
    assert f"{tmp_path/'bad.json'} line 2: not JSON" in err(read_layers_json, tmp_path/'bad.json')
    (tmp_path/'bad.json').write_text(json.dumps([[[1, 2, 3], [4, 5, 6]]]) + '\n')
    assert 'line 1: expected a nested list [heads][n][n] of numbers, got shape (1, 2, 3)' in err(read_layers_json, tmp_path/'bad.json')
    assert 'shape (layers, heads, n, n)' in err(write_layers_json, a[0], tmp_path/'w.json')

def test_tokens_json(tmp_path):
    recs = [{"index": i, "tokens": ["[CLS]", f"w{i}", "[SEP]"], "pred": "neutral", "golden": "entailment",
             "pred_logits": [[0.5, -1.0, 2.0]]} for i in range(3)]
    p = tmp_path/'tokens_and_pred_3.json'
    write_tokens_json(recs, p)
    assert p.read_text() == json.dumps(recs, indent=2) + '\n'  # byte-identical to the original's writer
    assert read_tokens_json(p) == recs
    recs[1] = dict(recs[1], pred_logits=np.array([[0.5, -1.0, 2.0]], np.float32), index=np.int64(1))
    write_tokens_json(recs, p)
    assert read_tokens_json(p)[1]['pred_logits'] == [[0.5, -1.0, 2.0]]
    del recs[2]['golden']
    assert err(write_tokens_json, recs, p) == f"{p}: record 2: missing field 'golden' (expected fields {list(TOKENS_FIELDS)})"

# ---------------------------------------------------------------- featurisation
def orig_features(ex, tok, label_list, P):
    "The original's convert_examples_to_features for one example (BERT layout hard-coded, no padding)."
    a = tok.tokenize(ex.text_a); b = tok.tokenize(ex.text_b) if ex.text_b else None
    if b:
        while len(a) + len(b) > P - 3:
            if len(a) > len(b): a.pop()
            else: b.pop()
    elif len(a) > P - 2: a = a[:P - 2]
    tokens = ['[CLS]'] + a + ['[SEP]']; seg = [0] * len(tokens)
    if b: tokens += b + ['[SEP]']; seg += [1] * (len(b) + 1)
    return tokens, tok.convert_tokens_to_ids(tokens), seg, label_list.index(ex.label)

def test_featurize_matches_original(bert):
    rng, words = random.Random(0), [w for w in WORDS.split() if not w.startswith('##')]
    sent = lambda: ' '.join(rng.choice(words) + rng.choice(['', '', 's', 'ing']) for _ in range(rng.randint(1, 14)))
    exs = [InputExample(f'r-{i}', sent(), sent() if i % 3 else None, rng.choice(NLI_LABELS)) for i in range(200)]
    for P in (4, 5, 8, 13, 128):
        for ex, f in zip(exs, featurize(exs, bert, NLI_LABELS, max_seq_length=P)):
            tokens, ids, seg, label = orig_features(ex, bert, NLI_LABELS, P)
            assert (f.tokens, f.input_ids, f.token_type_ids, f.label) == (tokens, ids, seg, label)
            assert f.attention_mask == [1] * len(ids) and len(ids) <= P and f.guid == ex.guid
            assert f.seg_pos == tokens.index('[SEP]')

def test_featurize_python_tokenizer(bert, tmp_path):
    (tmp_path/'vocab.txt').write_text('\n'.join(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] + WORDS.split()) + '\n')
    slow = BertTokenizerLegacy(vocab_file=str(tmp_path/'vocab.txt'))
    ex = [InputExample('x', 'the cats sat', 'a dog is jumping', 'yes'), InputExample('y', 'big red car', None, 'no')]
    test = lambda f: (f.input_ids, f.token_type_ids, f.tokens, f.seg_pos)
    assert list(map(test, featurize(ex, slow, ['no', 'yes']))) == list(map(test, featurize(ex, bert, ['no', 'yes'])))

def test_featurize_roberta(roberta):
    f = featurize([InputExample('r', 'cat cat', 'dog', '1')], roberta, ['0', '1'])[0]
    assert f.tokens == ['<s>', 'cat', 'Ġcat', '</s>', '</s>', 'd', 'o', 'g', '</s>']  # no prefix space, as `roberta(a, b)`
    assert (f.seg_pos, f.token_type_ids, f.label) == (3, [0] * 9, 1)
    assert f.input_ids == roberta('cat cat', 'dog')['input_ids']
    f = featurize([InputExample('r', 'cat cat cat cat', 'dog dog')], roberta, max_seq_length=6)[0]
    assert f.tokens == ['<s>', 'cat', '</s>', '</s>', 'd', '</s>']  # 6 - 4 special tokens; b loses ties
    b = collate([f, featurize([InputExample('s', 'cat')], roberta)[0]], pad_token_id=roberta.pad_token_id)
    assert b['input_ids'][1].tolist() == [0, 13, 2, 1, 1, 1] and 'labels' not in b

def test_featurize_regression_and_errors(bert):
    f = featurize([InputExample('s', 'a cat', 'a dog', '4.250')], bert)[0]
    assert f.label == 4.25 and collate([f])['labels'].dtype == torch.float
    assert err(featurize, [InputExample('s', 'a cat', None, 'neutral')], bert) == \
        "example s: label 'neutral' is not a number (pass `labels` for a classification task)"
    assert err(featurize, [InputExample('s', 'a cat', None, 'x')], bert, ['a']) == "example s: label 'x' is not one of ['a']"
    assert 'leaves no room' in err(featurize, [InputExample('s', 'a')], bert, max_seq_length=2)

def test_featurize_task(bert, tmp_path):
    name, rows, _ = TASKS['sts-b']
    tsv(tmp_path, name, rows)
    f = featurize_task('sts-b', tmp_path, bert)[0]
    assert f.label == 5.0 and f.guid == 'dev-0'

def test_collate_batches():
    fs = [Features([2, 7, 3], [1] * 3, [0] * 3, 1, ['[CLS]', 'x', '[SEP]'], 'a', 2),
          Features([2, 7, 3, 8, 3], [1] * 5, [0, 0, 0, 1, 1], 0, list('abcde'), 'b', 2)]
    b = collate(fs)
    assert b['input_ids'].tolist() == [[2, 7, 3, 0, 0], [2, 7, 3, 8, 3]]
    assert b['attention_mask'].tolist() == [[1, 1, 1, 0, 0], [1] * 5]
    assert b['token_type_ids'].tolist() == [[0, 0, 0, 0, 0], [0, 0, 0, 1, 1]]
    assert b['labels'].tolist() == [1, 0] and b['labels'].dtype == torch.long
    assert collate(fs, pad_to=128)['input_ids'].shape == (2, 128)
    assert err(collate, fs, pad_to=4) == 'collate: pad_to=4 is shorter than the longest example (5 tokens)'
    assert [x['input_ids'].shape for x in batches(fs * 3, 4)] == [(4, 5), (2, 5)]
    assert [x['input_ids'].shape for x in batches(fs[:1] * 3, 2)] == [(2, 3), (1, 3)]  # each batch pads to its own longest

def test_group_by_label():
    exs = [InputExample(str(i), 'x', None, l) for i, l in enumerate(['neutral', 'contradiction', 'neutral'])]
    assert [[e.guid for e in g] for g in group_by_label(exs, NLI_LABELS)] == [['1'], [], ['0', '2']]
    assert err(group_by_label, exs, ['neutral']) == "example 1: label 'contradiction' is not one of ['neutral']"

# ---------------------------------------------------------------- real tokenizer and data
@pytest.fixture(scope='module')
def minilm():
    if not (MINILM/'tokenizer_config.json').exists(): pytest.skip(f'no MiniLM checkpoint at {MINILM}')
    return AutoTokenizer.from_pretrained(MINILM)

@pytest.mark.real
def test_real_mnli(minilm):
    exs = read_examples('mnli', MNLI_DEV)
    assert len(exs) == 51 and (exs[4].text_a, exs[4].text_b) == ("i don't know um do you do a lot of camping", 'I know exactly.')
    fs = featurize_task('mnli', MNLI_DEV, minilm)
    assert [f.input_ids for f in fs] == [minilm(e.text_a, e.text_b)['input_ids'] for e in exs]
    assert [f.token_type_ids for f in fs] == [minilm(e.text_a, e.text_b)['token_type_ids'] for e in exs]
    assert fs[4].tokens[fs[4].seg_pos] == '[SEP]' and fs[4].tokens[-5:] == ['i', 'know', 'exactly', '.', '[SEP]']
    assert [f.label for f in fs[:3]] == [NLI_LABELS.index(e.label) for e in exs[:3]]
    b = next(batches(fs, 16, pad_token_id=minilm.pad_token_id))
    assert b['input_ids'].shape == (16, max(len(f.input_ids) for f in fs[:16]))

@pytest.mark.real
@pytest.mark.parametrize('task,folder,n', [('rte', 'rte', 277), ('sst-2', 'sst-2', 2000), ('snli', 'snli-sample', 300),
                                           ('mnli', 'mnli', 51)])
def test_shared_data(minilm, task, folder, n):
    if not (SHARED/folder).is_dir(): pytest.skip(f'{SHARED/folder} is absent')
    exs = read_examples(task, SHARED/folder)
    assert len(exs) == n and {e.label for e in exs} == set(get_processor(task).labels)
    fs = featurize(exs, minilm, get_processor(task).labels)
    assert max(len(f.input_ids) for f in fs) <= MAX_SEQ_LENGTH
    assert all(f.tokens[f.seg_pos] == '[SEP]' and f.tokens[0] == '[CLS]' for f in fs)
    assert sum(map(len, group_by_label(exs, get_processor(task).labels))) == n
