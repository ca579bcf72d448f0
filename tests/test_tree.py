"""Attribution tree: the faithful setting against a hand-worked answer, well-formedness, thresholds, drawing, files, CLI."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import numpy as np
import networkx as nx
import pytest
import matplotlib
matplotlib.use('Agg')
import matplotlib.image as mpimg
import matplotlib.pyplot as plt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from attattr.core import AttattrError
from attattr.formats import write_layers_json, write_tokens_json
from attattr.tree import (attention_flow, attention_rollout, build_tree, compare_importance, draw_tree,
                          layer_scores, save_tree, spearman, tree_cli)
from attattr.core import attattr_tree

CLI = shutil.which('attattr-tree') or str(Path(sys.executable).with_name('attattr-tree'))

# ---------------------------------------------------------------------------------------------------------------------
# A hand-made 12-layer, 1-head, 6-token example whose tree was worked out by hand from the original's rules.
TOKENS = ["[CLS]", "the", "cat", "sat", "down", "[SEP]"]
CLS, THE, CAT, SAT, DOWN, SEP = range(6)

def hand_attr():
    "(12, 1, 6, 6): every layer's largest non-[CLS]-row entry is 1 ('the' → 'the'), so normalised = raw below it."
    a = np.zeros((12, 1, 6, 6))
    a[:, 0, THE, THE] = 1.0
    a[11, 0, SAT, SEP] = 3.0    # last layer: only counts for the top token (with it 'sat' beats 'the'), never an edge
    a[10, 0, SAT, THE] = 0.5    # start layer: the top token's only child
    a[10, 0, SAT, CAT] = 0.4    # exactly τ: not above it, no edge
    a[10, 0, CLS, CAT] = 10.0   # [CLS] query row: left out of the layer max (else 0.5/10 < τ), never walked
    a[9, 0, THE, CAT] = 0.9     # open 'the' adopts 'cat' (height 0 − 1/12) ...
    a[9, 0, CAT, DOWN] = 0.6    # ... and 'cat', scanned later in the same layer, adopts 'down' (−2/12)
    a[8, 0, SAT, SEP] = 0.8     # fixed 'sat' adopts '[SEP]': height = min over all tokens = −2/12
    a[8, 0, THE, DOWN] = 0.95   # 'down' is already in the tree (open): skipped
    a[5, 0, DOWN, CLS] = 0.7    # open 'down' adopts '[CLS]': −3/12
    a[0, 0, CLS, SAT] = 0.9     # [CLS] query row: never walked
    return a

def test_faithful_hand_example():
    G = build_tree(hand_attr(), TOKENS, faithful=True)
    assert G.graph['top'] == SAT and G.graph['start_layer'] == 10
    steps = [(u, v, l) for u, v, l, _ in sorted(((u, v, d['layer'], d['step']) for u, v, d in G.edges(data=True)),
                                                key=lambda e: e[3])]
    assert steps == [(SAT, THE, 10), (THE, CAT, 9), (CAT, DOWN, 9), (SAT, SEP, 8), (DOWN, CLS, 5)]
    heights = dict(G.nodes(data='height'))
    assert heights == {SAT: 11/12, THE: 0, CAT: (0*12 - 1)/12, DOWN: ((0*12 - 1)/12*12 - 1)/12,
                       SEP: ((0*12 - 1)/12*12 - 1)/12, CLS: (((0*12 - 1)/12*12 - 1)/12*12 - 1)/12}
    assert np.allclose([heights[i] for i in (CAT, DOWN, SEP, CLS)], [-1/12, -2/12, -2/12, -3/12])
    assert {v: d for v, d in G.nodes(data='layer')} == {SAT: 11, THE: 10, CAT: 9, DOWN: 9, SEP: 8, CLS: 5}
    assert {(u, v): round(w, 6) for u, v, w in G.edges(data='weight')} == {
        (SAT, THE): 0.5, (THE, CAT): 0.9, (CAT, DOWN): 0.6, (SAT, SEP): 0.8, (DOWN, CLS): 0.7}
    assert G.nodes[DOWN]['label'] == 'down4' and G.nodes[DOWN]['token'] == 'down' and G.nodes[DOWN]['position'] == DOWN

def test_default_hand_example():
    "The layered walk: tokens adopt only from the layer below the one they joined in; the strongest parent wins."
    G = build_tree(hand_attr(), TOKENS)
    assert G.graph['start_layer'] == 10
    assert sorted(G.edges(data='layer')) == sorted([(SAT, THE, 10), (THE, CAT, 9), (THE, DOWN, 8), (SAT, SEP, 8),
                                                    (DOWN, CLS, 5)])
    assert {v: h for v, h in G.nodes(data='height')} == {SAT: 11/12, THE: 10/12, CAT: 9/12, DOWN: 8/12, SEP: 8/12,
                                                         CLS: 5/12}

def test_hand_example_variants():
    a = hand_attr()
    assert build_tree(a[:, :, 1:, 1:], TOKENS[1:], faithful=True).graph['top'] == SAT - 1  # [CLS] dropped
    no_last = a.copy(); no_last[11] = np.eye(6)  # without the last layer's 3.0, 'the' has the largest row sum
    assert build_tree(no_last, TOKENS, faithful=True).graph['top'] == THE
    G = build_tree(a, TOKENS, faithful=True, threshold=0.85)  # only 'the' → 'cat'/'down' pass, but 'the' never joins
    assert G.number_of_edges() == 0 and list(G.nodes) == [SAT]
    G = build_tree(a, TOKENS, faithful=True, start_layer=9)  # nothing from 'sat' in layer 9; it stays open until layer 8
    assert list(G.edges(data='layer')) == [(SAT, SEP, 8)]
    assert dict(G.nodes(data='height')) == {SAT: 10/12, SEP: (10/12*12 - 1)/12}
    import torch
    assert nx.utils.edges_equal(build_tree(torch.tensor(a), TOKENS, faithful=True).edges, build_tree(a, TOKENS, faithful=True).edges)

# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('n_layers', [2, 6, 12])
@pytest.mark.parametrize('faithful', [True, False])
def test_well_formed(n_layers, faithful):
    rng = np.random.default_rng(n_layers)
    for trial in range(5):
        n = int(rng.integers(3, 30))
        toks = [f"w{k}" for k in range(n)]
        a = rng.normal(0, 1, (n_layers, 3, n, n)) * (rng.random((n_layers, 3, n, n)) < 0.5)
        G = build_tree(a, toks, threshold=0.2, faithful=faithful)
        t = G.graph['top']
        assert t != 0 and t in G and nx.is_directed_acyclic_graph(G)
        assert G.number_of_edges() == 0 or nx.is_arborescence(G)
        assert set(G.nodes) == nx.descendants(G, t) | {t}
        for v, d in G.nodes(data=True):
            assert {'token', 'position', 'label', 'layer', 'height'} <= set(d)
            assert d['token'] == toks[v] and d['position'] == v and d['label'] == f"{toks[v]}{v}"
        for u, v, d in G.edges(data=True):
            assert u in G and v in G and u != 0  # [CLS] is never a parent
            assert d['weight'] > 0.2 and 0 <= d['layer'] <= n_layers - 2
            assert G.nodes[v]['layer'] == d['layer'] and G.nodes[u]['layer'] >= d['layer']
            if not faithful: assert G.nodes[u]['layer'] > d['layer'] and G.nodes[u]['height'] > G.nodes[v]['height']

@pytest.mark.parametrize('faithful', [True, False])
def test_threshold_monotone_nodes(faithful):
    "Raising τ never adds a token (both settings); the edge sets are not nested (see `test_threshold_edges_not_nested`)."
    for seed in range(30):
        a = np.random.default_rng(seed).normal(0, 1, (6, 2, 10, 10))
        trees = [build_tree(a, list("abcdefghij"), threshold=t, faithful=faithful) for t in np.linspace(0.05, 0.95, 10)]
        for lo, hi in zip(trees, trees[1:]):
            assert set(hi.nodes) <= set(lo.nodes)
            # every edge of the sparser tree is an above-τ connection from a token the denser tree also holds
            for u, v, d in hi.edges(data=True): assert u in lo and v in lo and d['weight'] > lo.graph['threshold']

@pytest.mark.parametrize('faithful', [True, False])
def test_threshold_edges_not_nested(faithful):
    a = np.zeros((6, 1, 8, 8)); a[:, 0, 3, 3] = 1
    a[4, 0, 3, 2], a[3, 0, 3, 6], a[2, 0, 2, 6] = 0.9, 0.6, 0.8
    lo, hi = (build_tree(a, list("abcdefgh"), threshold=t, faithful=faithful) for t in (0.4, 0.7))
    assert set(lo.edges) == {(3, 2), (3, 6)} and set(hi.edges) == {(3, 2), (2, 6)}
    assert set(hi.nodes) <= set(lo.nodes)

def test_bad_arguments():
    a = np.random.default_rng(0).normal(0, 1, (4, 2, 5, 5))
    for kw, msg in [(dict(tokens=list("abcd")), "tokens: 4"), (dict(start_layer=4), "start_layer"),
                    (dict(layers=[1, 2]), "layers"), (dict(norm='max'), "norm"), (dict(top=-1), "top")]:
        with pytest.raises(AttattrError, match=msg): build_tree(a, **{'tokens': list("abcde"), **kw})
    with pytest.raises(AttattrError, match="not finite"): build_tree(np.full((2, 1, 3, 3), np.inf), list("abc"))
    assert isinstance(AttattrError("x"), ValueError)

# ---------------------------------------------------------------------------------------------------------------------
def _boxes(ax):
    c = FigureCanvasAgg(ax.figure); c.draw()
    r = c.get_renderer()
    return [t.get_bbox_patch().get_window_extent(r) for t in ax.texts if (t.get_gid() or '').startswith('node-')]

@pytest.mark.parametrize('n_layers', [6, 12])
def test_labels_do_not_overlap(n_layers):
    n = 30
    toks = ["[CLS]"] + [("extraordinarily" if k % 3 == 0 else "a") for k in range(1, n - 1)] + ["[SEP]"]
    a = np.random.default_rng(n_layers).normal(0, 1, (n_layers, 2, n, n))
    G = build_tree(a, toks, threshold=0.05)
    assert G.number_of_nodes() > n // 2
    for ax in (None, plt.subplots(figsize=(5, 3))[1]):
        ax = draw_tree(G, ax=ax)
        boxes = _boxes(ax)
        assert len(boxes) == G.number_of_nodes()
        assert not [(p, q) for k, p in enumerate(boxes) for q in boxes[k + 1:] if p.overlaps(q)]
        fig_box = ax.figure.bbox
        assert all(fig_box.x0 <= b.x0 and b.x1 <= fig_box.x1 for b in boxes)
        plt.close(ax.figure)

def test_save_tree_files(tmp_path):
    G = build_tree(hand_attr(), TOKENS, faithful=True)
    paths = save_tree(G, tmp_path/'sub'/'tree', formats=('png', 'svg', 'pdf'))
    assert [p.suffix for p in paths] == ['.png', '.svg', '.pdf', '.graphml', '.json']
    assert sorted(os.listdir(tmp_path/'sub')) == sorted(p.name for p in paths)  # no temp files left
    img = mpimg.imread(paths[0])
    assert paths[0].stat().st_size > 5000 and img.std() > 0.05
    H = nx.node_link_graph(json.loads(paths[-1].read_text()))
    assert set(H.edges) == set(G.edges) and dict(H.nodes(data='height')) == dict(G.nodes(data='height'))
    g = nx.read_graphml(paths[-2], node_type=int)
    assert set(g.edges) == set(G.edges) and g.graph['faithful'] is True

def test_save_tree_is_atomic(tmp_path, monkeypatch):
    G = build_tree(hand_attr(), TOKENS)
    (tmp_path/'t.png').write_bytes(b'old')
    def boom(*a, **k): raise OSError("disk full")
    monkeypatch.setattr(matplotlib.figure.Figure, 'savefig', boom)
    with pytest.raises(OSError): save_tree(G, tmp_path/'t', formats='png')
    assert os.listdir(tmp_path) == ['t.png'] and (tmp_path/'t.png').read_bytes() == b'old'

# ---------------------------------------------------------------------------------------------------------------------
def test_rollout_and_flow():
    rng = np.random.default_rng(0)
    att = rng.dirichlet(np.ones(6), size=(4, 3, 6))  # (L, H, n, n)
    A = 0.5*att.mean(1) + 0.5*np.eye(6)
    assert np.allclose(attention_rollout(att), A[3] @ A[2] @ A[1] @ A[0])
    assert np.allclose(attention_rollout(att, add_residual=False), np.linalg.multi_dot(list(att.mean(1)[::-1])))
    f = attention_flow(att, output=2)
    assert f.shape == (6,) and np.isclose(f.sum(), 1) and (f >= 0).all()
    two = np.array([[[[.5, .5], [.5, .5]]], [[[.9, .1], [.5, .5]]]])
    assert np.allclose(attention_flow(two, add_residual=False, normalise=False), [.6, .6])
    one = attention_flow(att[:1], output=4, normalise=False)
    assert np.allclose(one, A[0, 4])

def test_flow_fast_enough():
    import time
    att = np.random.default_rng(1).dirichlet(np.ones(40), size=(6, 12, 40))
    t0 = time.perf_counter(); attention_flow(att); assert time.perf_counter() - t0 < 10

def test_spearman_and_compare():
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1)
    assert spearman([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(0.8)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(3/np.sqrt(10))
    rng = np.random.default_rng(2)
    attr, att = rng.normal(0, 1, (3, 2, 7, 7)), rng.dirichlet(np.ones(7), size=(3, 2, 7))
    c = compare_importance(attr, att, exclude=(0, 6))
    assert np.allclose(c['attribution'], layer_scores(attr).sum((0, 1)))
    assert c['rollout_spearman'] == pytest.approx(spearman(c['attribution'][1:6], c['rollout'][1:6]))
    assert -1 <= c['flow_spearman'] <= 1

# ---------------------------------------------------------------------------------------------------------------------
@pytest.fixture
def files(tmp_path):
    "The original's two input files for a 12-layer example with index 16, in a folder of their own."
    d = tmp_path/'in'; d.mkdir()
    write_layers_json(hand_attr().astype(np.float32), d/'attr_zero_base_exp16.json')
    recs = [dict(index=i, tokens=TOKENS if i == 16 else ["[CLS]", "x", "[SEP]"], pred='neutral', golden='neutral',
                 pred_logits=[[0.1, 0.2, 0.7]]) for i in (15, 16)]
    write_tokens_json(recs, d/'tokens_and_pred_100.json')
    return d

def _run(*args):
    "Run the installed console script in a process of its own (slow: it imports torch)."
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=300)

def _main(monkeypatch, capsys, *args):
    "Run the console script's function in this process, as `attattr-tree args`: exit status, stdout, stderr."
    monkeypatch.setattr(sys, 'argv', ['attattr-tree', *map(str, args)])
    try: rc = attattr_tree() or 0
    except SystemExit as e: rc = e.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, out, err)

def test_cli_round_trip(files, tmp_path, monkeypatch, capsys):
    out = tmp_path/'out'
    r = _run('--attr_file', files/'attr_zero_base_exp16.json', '--tokens_file', files/'tokens_and_pred_100.json',
             '--example_index', 16, '--faithful', '--out', out/'tree16')
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out)) == ['tree16.graphml', 'tree16.json', 'tree16.png', 'tree16.svg']
    png = out/'tree16.png'
    assert png.stat().st_size > 5000 and mpimg.imread(png).std() > 0.05
    H = nx.node_link_graph(json.loads((out/'tree16.json').read_text()))
    # the file holds float32 values, as the original's did: 0.4 becomes 0.4000000059604645 > τ, so 'sat' → 'cat' passes
    G = build_tree(hand_attr().astype(np.float32), TOKENS, faithful=True)
    assert (SAT, CAT) in G.edges and (SAT, CAT) not in build_tree(hand_attr(), TOKENS, faithful=True).edges
    assert set(H.edges) == set(G.edges) and dict(H.nodes(data='height')) == dict(G.nodes(data='height'))
    assert H.graph['example_index'] == 16 and H.graph['pred'] == 'neutral'
    assert set(nx.read_graphml(out/'tree16.graphml', node_type=int).edges) == set(G.edges)
    # fastcore's spellings, the default output place, the default (non-faithful) tree, other formats
    r = _main(monkeypatch, capsys, '--attr-file', files/'attr_zero_base_exp16.json', '--tokens-file',
              files/'tokens_and_pred_100.json', '--example-index=16', '--formats', 'pdf', '--threshold', 0.5)
    assert r.returncode == 0, r.stderr
    assert {'tree_exp16.pdf', 'tree_exp16.graphml', 'tree_exp16.json'} <= set(os.listdir(files))
    H = nx.node_link_graph(json.loads((files/'tree_exp16.json').read_text()))
    assert set(H.edges) == set(build_tree(hand_attr().astype(np.float32), TOKENS, threshold=0.5).edges) and H.graph['threshold'] == 0.5

def test_cli_function(files, tmp_path):
    paths = tree_cli(attr_file=files/'attr_zero_base_exp16.json', tokens_file=files/'tokens_and_pred_100.json', example_index=16,
                     out=tmp_path/'t', formats='png')
    assert [p.name for p in paths] == ['t.png', 't.graphml', 't.json']
    tree_cli(attr_file=str(files/'attr_zero_base_exp16.json'), tokens_file=str(files/'tokens_and_pred_100.json'),
             example_index=16, out=str(tmp_path/'u'), formats='svg')
    assert (tmp_path/'u.svg').exists()

def _bad_cases(files, tmp_path):
    a, t = files/'attr_zero_base_exp16.json', files/'tokens_and_pred_100.json'
    (tmp_path/'broken.json').write_text('[[[0.1, 0.2], [0.3\n')
    (tmp_path/'ragged.json').write_text('[[[0.1, 0.2], [0.3]]]\n')
    (tmp_path/'tok_broken.json').write_text('[{"index": 16, "tokens": ')
    (tmp_path/'tok_nofield.json').write_text('[{"index": 16, "pred": "x", "golden": "y"}]')
    return [
        (['--attr_file', tmp_path/'missing.json', '--tokens_file', t], 'missing.json'),
        (['--attr_file', a, '--tokens_file', tmp_path/'missing2.json'], 'missing2.json'),
        (['--attr_file', tmp_path/'broken.json', '--tokens_file', t], 'broken.json line 1'),
        (['--attr_file', tmp_path/'ragged.json', '--tokens_file', t], 'ragged.json line 1'),
        (['--attr_file', a, '--tokens_file', tmp_path/'tok_broken.json'], 'tok_broken.json'),
        (['--attr_file', a, '--tokens_file', tmp_path/'tok_nofield.json'], "missing field 'tokens'"),
        (['--attr_file', a, '--tokens_file', t, '--example_index', 99], '"index": 99'),
        (['--attr_file', a, '--tokens_file', t, '--example_index', 15], "'tokens' has 3 tokens"),
        (['--attr_file', a, '--tokens_file', t, '--formats', 'png,xyz'], "'xyz'"),
        (['--attr_file', a, '--tokens_file', t, '--threshold', 'nan'], 'threshold'),
        (['--attr_file', a, '--tokens_file', t, '--threshold', 1.5], '--threshold: expected a value in [0, 1], got 1.5'),
        (['--tokens_file', t], 'the following arguments are required: --attr_file'),
    ]

def test_cli_bad_input(files, tmp_path, monkeypatch, capsys):
    out = tmp_path/'out'; out.mkdir()
    for k, (args, needle) in enumerate(_bad_cases(files, tmp_path)):
        before = sorted(os.listdir(files)), sorted(os.listdir(tmp_path))
        args = [*args, '--out', out/'tree', *([] if '--example_index' in args else ['--example_index', 16])]
        r = _run(*args) if k == 0 else _main(monkeypatch, capsys, *args)  # the first one in a real process
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith('attattr-tree: error: ') and needle in lines[0], (args, r.stderr)
        assert r.stdout == '' and os.listdir(out) == []
        assert (sorted(os.listdir(files)), sorted(os.listdir(tmp_path))) == before

def test_cli_usage_error_exit_2(files, monkeypatch, capsys):
    r = _main(monkeypatch, capsys, '--attr_file', files/'attr_zero_base_exp16.json', '--tokens_file', files/'tokens_and_pred_100.json',
              '--no_such_flag', 1)
    assert r.returncode == 2 and 'unrecognized arguments: --no_such_flag 1' in r.stderr
    assert sorted(os.listdir(files)) == ['attr_zero_base_exp16.json', 'tokens_and_pred_100.json']

def test_cli_faithful_flag(files, tmp_path, monkeypatch, capsys):
    "--faithful [BOOL]: the original's tree (as the other commands' flag); absent or false: the improved tree."
    a, t = files/'attr_zero_base_exp16.json', files/'tokens_and_pred_100.json'
    want = {True: build_tree(hand_attr().astype(np.float32), TOKENS, faithful=True).edges,
            False: build_tree(hand_attr().astype(np.float32), TOKENS).edges}
    for flags, faithful in (([], False), (['--faithful'], True), (['--faithful', 'true'], True), (['--faithful=false'], False)):
        out = tmp_path/'_'.join(flags or ['none'])
        r = _main(monkeypatch, capsys, '--attr_file', a, '--tokens_file', t, '--example_index', 16, '--formats', 'png', '--out', out, *flags)
        assert r.returncode == 0, r.stderr
        H = nx.node_link_graph(json.loads(out.with_suffix('.json').read_text()))
        assert H.graph['faithful'] is faithful and set(H.edges) == set(want[faithful]), flags
    r = _main(monkeypatch, capsys, '--attr_file', a, '--tokens_file', t, '--task_name', 'mnli')  # unused by the original: gone
    assert r.returncode == 2 and 'unrecognized arguments: --task_name mnli' in r.stderr

def test_cli_minimal_tokens_file_and_default_index(files, tmp_path, monkeypatch, capsys):
    "The original's minimum: a tokens file with only index and tokens; no --example_index: the attribution file's exp16."
    (tmp_path/'t.json').write_text(json.dumps([dict(index=i, tokens=TOKENS if i == 16 else ['[CLS]', '[SEP]']) for i in (3, 16)]))
    r = _main(monkeypatch, capsys, '--attr_file', files/'attr_zero_base_exp16.json', '--tokens_file', tmp_path/'t.json',
              '--formats', 'png', '--out', tmp_path/'tree')
    assert r.returncode == 0, r.stderr
    H = nx.node_link_graph(json.loads((tmp_path/'tree.json').read_text()))
    assert H.graph['example_index'] == 16 and set(H.edges) == set(build_tree(hand_attr().astype(np.float32), TOKENS).edges)

def test_cli_outputs_all_or_nothing(files, tmp_path, monkeypatch, capsys, full_disk_at):
    "A full disk at the third file: none of the tree's files is left, one line names the file that failed."
    full_disk_at(3)
    r = _main(monkeypatch, capsys, '--attr_file', files/'attr_zero_base_exp16.json', '--tokens_file', files/'tokens_and_pred_100.json',
              '--out', tmp_path/'tree')
    assert r.returncode == 2 and r.stderr == f"attattr-tree: error: {tmp_path/'tree.graphml'}: no space left on the device\n", r.stderr
    assert os.listdir(tmp_path) == ['in']  # the fixture's inputs only
