"Headless tests of attattr.widgets: static figures, explorers driven by setting control values, fallbacks without ipywidgets."
import importlib, sys, warnings
import numpy as np
import pytest
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from attattr.core import AttattrError
from attattr.data import InputExample, featurize
from attattr.testing import tiny_model, tiny_tokenizer
from attattr.attribution import attribute
import attattr.widgets as W

N_STEPS = 2  # integration points: the tests check plumbing, not attribution quality
EXAMPLES = [InputExample('t-0', 'i don t know um do you do a lot of camping', 'i know exactly'),
            InputExample('t-1', 'the cat sat on the mat', 'a cat is here')]
PNG = b'\x89PNG'

@pytest.fixture(scope='module')
def tiny():
    return tiny_model(layers=4, heads=2), tiny_tokenizer()

@pytest.fixture(scope='module')
def res(tiny):
    m, tk = tiny
    return attribute(m, featurize(EXAMPLES[:1], tk)[0], n_steps=N_STEPS)

@pytest.fixture(scope='module')
def cache(res):
    "Attributions of `EXAMPLES` by index, shared by the tests that do not check laziness."
    return {0: res}

@pytest.fixture(autouse=True)
def _close_figures(monkeypatch):
    monkeypatch.delenv(W.STATIC_ENV, raising=False)
    yield
    plt.close('all')

def titles(fig): return [a.get_title() for a in fig.axes if a.get_title()]

# --- deciding the mode

def test_use_static_without_frontend():
    assert not W.has_frontend()  # pytest runs no kernel
    assert W.use_static() is True and W.use_static(True) is True and W.use_static(False) is False

def test_use_static_with_frontend_and_env(monkeypatch):
    monkeypatch.setattr(W, 'has_frontend', lambda: True)
    assert W.use_static() is False
    monkeypatch.setenv(W.STATIC_ENV, '1')
    assert W.use_static() is True
    assert W.use_static(False) is False  # an explicit choice wins
    monkeypatch.setenv(W.STATIC_ENV, '0')
    assert W.use_static() is False

# --- static figures

def test_plot_heads(res):
    n = len(res.tokens)
    axs = W.plot_heads(res, 2, 1)
    assert [a.get_title() for a in axs] == ['layer 2 head 1: attribution', 'layer 2 head 1: attention']
    np.testing.assert_allclose(axs[0].images[0].get_array(), res.attributions[2, 1].numpy(), rtol=1e-6)
    np.testing.assert_allclose(axs[1].images[0].get_array(), res.attentions[2, 1].numpy(), rtol=1e-6)
    lo, hi = axs[0].images[0].get_clim()
    assert lo == -hi > -np.inf and hi > 0  # diverging, centred at 0
    assert axs[0].images[0].get_cmap().name == W.ATTR_CMAP and axs[1].images[0].get_cmap().name == W.ATT_CMAP
    assert [t.get_text() for t in axs[0].get_xticklabels()] == res.tokens and len(axs[0].get_yticklabels()) == n
    assert axs[0].get_xlabel() == 'key' and axs[0].get_ylabel() == 'query'
    assert len(axs[0].figure.axes) == 4  # two heatmaps, two colour bars

def test_tick_font_shrinks_with_length():
    assert W.tick_font(40) == 8. and W.tick_font(10) == W.TICK_FONT[1] and W.tick_font(1000) == W.TICK_FONT[0]
    assert all(W.tick_font(a) >= W.tick_font(b) for a, b in zip(range(1, 99), range(2, 100)))

def test_plot_heads_bad_input(res):
    with pytest.raises(AttattrError, match='head: expected 0…1'): W.plot_heads(res, 0, 2)
    with pytest.raises(AttattrError, match='layer: 7 has no attribution'): W.plot_heads(res, 7, 0)
    with pytest.raises(AttattrError, match='two axes'): W.plot_heads(res, 0, 0, ax=plt.subplots(1, 3)[1])

def test_layer_summary(res):
    S = W.head_summary(res)
    assert S.shape == (4, 2)
    np.testing.assert_allclose(S, res.attributions.double().amax((2, 3)).numpy())
    l, h = W.top_head(res)
    assert S[l, h] == S.max()
    ax = W.plot_layer_summary(res, select=(1, 1))
    assert ax.get_title() == 'max attribution per head' and len(ax.patches) == 1
    star, = ax.lines
    assert (star.get_xdata()[0], star.get_ydata()[0]) == (h, l)
    with pytest.raises(AttattrError, match='stat'): W.head_summary(res, 'median')

def test_plot_example_and_tree(res):
    fig = W.plot_example(res, 3, 0, title='t')
    assert titles(fig) == ['max attribution per head', 'layer 3 head 0: attribution', 'layer 3 head 0: attention']
    G, axs = W.plot_tree(res, 0.3, rollout=True)
    assert G.number_of_edges() == len(G) - 1 and len(axs) == 2 and axs[1].get_title() == 'attention rollout'
    G2, axs2 = W.plot_tree(res, 0.3)
    assert len(axs2) == 1 and sorted(G2.edges) == sorted(G.edges)

# --- the head explorer

def test_explore_widgets_redraw(tiny):
    m, tk = tiny
    ex = W.explore(m, tk, EXAMPLES, layer=1, head=0, static=False, n_steps=N_STEPS)
    ipw = importlib.import_module('ipywidgets')
    assert isinstance(ex, W.HeadExplorer) and isinstance(ex.widget, ipw.VBox)
    assert isinstance(ex.controls['example'], ipw.Dropdown) and len(ex.controls['example'].options) == 2
    assert isinstance(ex.controls['layer'], ipw.IntSlider) and ex.controls['layer'].max == 3
    assert isinstance(ex.controls['head'], ipw.IntSlider) and ex.controls['head'].max == 1
    assert bytes(ex.image.value).startswith(PNG) and 'layer 1 head 0' in titles(ex.fig)[1]
    assert list(ex.cache) == [0]  # lazily: only the example shown
    first, png = ex.fig, bytes(ex.image.value)
    ex.controls['layer'].value = 3
    assert ex.values['layer'] == 3 and 'layer 3 head 0: attribution' in titles(ex.fig) and ex.fig is not first
    ex.controls['head'].value = 1
    assert titles(ex.fig)[1:] == ['layer 3 head 1: attribution', 'layer 3 head 1: attention']
    np.testing.assert_allclose(ex.fig.axes[2].images[0].get_array(), ex.cache[0].attributions[3, 1].numpy(), rtol=1e-6)
    assert bytes(ex.image.value) != png and ex.n_draws == 3
    ex.controls['example'].value = 1
    assert sorted(ex.cache) == [0, 1] and ex.fig._suptitle.get_text().startswith('t-1: predicted')
    n1 = len(ex.cache[1].tokens)
    assert len(ex.fig.axes[2].get_xticklabels()) == n1
    cached = ex.cache[0]
    ex.controls['example'].value = 0
    assert ex.cache[0] is cached  # computed once per example
    assert 'Σ attribution' in ex.status.value

def test_explore_defaults_to_top_head(tiny):
    m, tk = tiny
    cache = {}
    fig = W.explore(m, tk, EXAMPLES[1], cache=cache, static=True, n_steps=N_STEPS)
    l, h = W.top_head(cache[0])
    assert isinstance(fig, Figure) and f'layer {l} head {h}: attribution' in titles(fig)

def test_explore_static_returns_figure(tiny, cache):
    m, tk = tiny
    for static in (None, True):  # None: no frontend under pytest
        fig = W.explore(m, tk, featurize(EXAMPLES, tk), example=1, layer=0, head=1, cache=cache, static=static, n_steps=N_STEPS)
        assert isinstance(fig, Figure) and 'layer 0 head 1: attention' in titles(fig)
    fig = W.explore(m, tk, EXAMPLES[:1], layer=0, head=1, summary=False, cache=cache, static=True)
    assert titles(fig) == ['layer 0 head 1: attribution', 'layer 0 head 1: attention']

def test_explore_bad_input(tiny):
    m, tk = tiny
    with pytest.raises(AttattrError, match='nothing to explore'): W.explore(m, tk, [], static=True)
    with pytest.raises(AttattrError, match='layer: expected 0…3'): W.explore(m, tk, EXAMPLES, layer=4, head=0, static=True)
    with pytest.raises(AttattrError, match='example: expected 0…1'): W.explore(m, tk, EXAMPLES, example=2, static=True)
    # a layer that was not attributed: the widget shows the error instead of raising in a callback
    ex = W.explore(m, tk, EXAMPLES, layer=0, head=0, static=False, n_steps=N_STEPS, layers=[0])
    fig = ex.fig
    ex.controls['layer'].value = 2
    assert 'error' in ex.status.value and ex.fig is fig
    ex2 = W.explore(m, tk, EXAMPLES, layer=2, head=0, cache=ex.cache, static=False)  # wrong from the start
    assert ex2.fig is None and 'error' in ex2.status.value and list(ex2._repr_mimebundle_()) == ['text/plain']

def test_repr_without_frontend(tiny, res):
    tx = W.tree_explorer(res, static=False)
    b = tx._repr_mimebundle_()
    assert b['image/png'].startswith(PNG) and 'TreeExplorer' in b['text/plain']

# --- the tree explorer

def test_tree_explorer_threshold_slider(res):
    tx = W.tree_explorer(res, threshold=0.05, static=False)
    assert set(tx.controls) == {'threshold', 'rollout'}
    edges = []
    for t in np.arange(0.05, 0.96, 0.15):
        tx.controls['threshold'].value = float(t)
        G = tx.tree
        assert G.graph['threshold'] == pytest.approx(t) and G.number_of_edges() == len(G) - 1
        assert f'{G.number_of_edges()} edges' in tx.status.value
        edges.append(G.number_of_edges())
    assert edges == sorted(edges, reverse=True) and edges[0] > edges[-1], edges
    assert 'attention rollout' not in titles(tx.fig)
    tx.controls['rollout'].value = True
    assert 'attention rollout' in titles(tx.fig) and bytes(tx.image.value).startswith(PNG)

def test_tree_explorer_static(res):
    fig = W.tree_explorer(res, 0.2, rollout=True)
    assert isinstance(fig, Figure) and titles(fig) == ['attribution tree, τ = 0.20', 'attention rollout']
    part = attribute(tiny_model(layers=4, heads=2), featurize(EXAMPLES[:1], tiny_tokenizer())[0], layers=[3], n_steps=N_STEPS)
    with pytest.raises(AttattrError, match='all 4 layers'): W.tree_explorer(part, static=True)

# --- without ipywidgets

def test_missing_ipywidgets(monkeypatch, tiny, res, cache):
    m, tk = tiny
    monkeypatch.setitem(sys.modules, 'ipywidgets', None)  # `import ipywidgets` raises ImportError
    monkeypatch.setattr(W, 'has_frontend', lambda: True)  # even in a notebook
    monkeypatch.delitem(sys.modules, 'attattr.widgets')
    W2 = importlib.import_module('attattr.widgets')  # importing the module does not need ipywidgets
    assert W2 is not W and W2._ipywidgets() is None and W2.use_static() is True
    assert isinstance(W.explore(m, tk, EXAMPLES, layer=0, head=0, cache=cache), Figure)
    assert isinstance(W.tree_explorer(res), Figure)
    with pytest.warns(UserWarning, match='ipywidgets is not installed'):
        fig = W.explore(m, tk, EXAMPLES, layer=0, head=0, cache=cache, static=False)
    assert isinstance(fig, Figure)

DOCS_COLUMN_PX = 1000  # a documentation page's content column at its widest on a 1440-pixel screen (tools/build_docs.py CSS)
MIN_LABEL_PX = 8.  # smallest legible token label on screen, pixels: a figure shown narrower than drawn shrinks its text

def shown_px(fig, fontsize_pt) -> float:
    "On-screen size of a `fontsize_pt` label when `fig` (saved at `W.WIDGET_DPI`) is shown at most `DOCS_COLUMN_PX` wide."
    return fontsize_pt*W.WIDGET_DPI/72*min(1., DOCS_COLUMN_PX/(fig.get_figwidth()*W.WIDGET_DPI))

@pytest.mark.parametrize('n_words', [7, 19])
def test_figures_legible_in_a_docs_column(tiny, n_words):
    "The tree-plus-rollout figure (and, at the tutorial's sentence lengths, the heatmaps) keep token labels legible in the docs."
    m, tk = tiny
    words = ' '.join(f'w{i}' for i in range(n_words))
    r = attribute(m, featurize([InputExample('t', words, words)], tk)[0], n_steps=N_STEPS)
    n = len(r.tokens)  # 2 n_words + 3
    G, axs = W.plot_tree(r, 0.05, rollout=True)
    assert shown_px(axs[0].figure, W.tick_font(n)) >= MIN_LABEL_PX, (n, axs[0].figure.get_size_inches())
    if n <= 20:  # the tutorial's examples: both heatmaps side by side, labels full size
        fig = W.plot_example(r, 0, 0)
        assert shown_px(fig, W.tick_font(n)) >= MIN_LABEL_PX, (n, fig.get_size_inches())
