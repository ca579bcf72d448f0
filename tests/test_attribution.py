"The attribution kernel against the reference re-implementation of the original algorithm (bench/reference.py)."
import pytest, torch
import reference as R
from conftest import MNLI, need
from attattr.attribution import FAITHFUL, attribute
from attattr.data import collate, featurize_task
from attattr.hooks import HookState, hook_model, hooked_forward, num_layers_heads, unhook
from attattr.testing import tiny_model, tiny_tokenizer

TOL = 1e-4  # max relative difference allowed against the reference (the bound)

def rel(a, b): return ((a - b).abs().max() / b.abs().max()).item()

@pytest.fixture(scope='module')
def tiny():
    return tiny_model('bert', layers=3), tiny_tokenizer()

def test_faithful_equals_reference_tiny(tiny, tmp_path):
    model, tok = tiny
    f = featurize_task('mnli', need(MNLI), tok, limit=3)[2]
    x = collate([f], pad_to=128)  # the original pads to 128; attattr trims, which must not matter
    ref = R.reference_attribution(R.wrap(model), x)
    ours = attribute(model, x, **FAITHFUL)
    assert ours.attributions.shape == ref.shape
    assert rel(ours.attributions, ref) <= TOL

@pytest.mark.real
def test_faithful_equals_reference_minilm(minilm):
    model, tok = minilm
    f = featurize_task('mnli', need(MNLI), tok, limit=5)[4]
    x = collate([f], pad_to=128)
    ref = R.reference_attribution(R.wrap(model), x)
    ours = attribute(model, f, **FAITHFUL)  # trimmed input
    assert rel(ours.attributions, ref) <= TOL

def test_completeness_shrinks_and_gauss_legendre_is_cheaper(tiny):
    model, tok = tiny
    f = featurize_task('mnli', need(MNLI), tok, limit=2)[1]
    err = lambda m, meth: attribute(model, f, n_steps=m, method=meth).delta.abs().max().item()
    left = [err(m, 'riemann_left') for m in (4, 16, 64)]
    assert left[0] > left[1] > left[2]
    assert err(8, 'gauss_legendre') < left[2]

def test_head_mask_equals_zeroed_context(tiny):
    model, tok = tiny
    x = collate(featurize_task('mnli', need(MNLI), tok, limit=4))
    L, H = num_layers_heads(model)
    mask = torch.ones(L, H); mask[1, 2] = 0
    with torch.no_grad(): masked = hooked_forward(model, x, HookState(head_mask=mask))
    # the same forward with head (1, 2)'s context zeroed by hand through a forward hook on the attention module
    st = HookState(keep_context=True)
    mods = [m for m in model.modules() if type(m).__name__ == 'BertSelfAttention']
    def zero(mod, args, out):
        o = out[0].clone(); d = o.shape[-1] // H
        o[..., 2*d:3*d] = 0
        return (o,) + tuple(out[1:])
    h = mods[1].register_forward_hook(zero)
    try:
        with torch.no_grad(): by_hand = hooked_forward(model, x, st)
    finally: h.remove()
    torch.testing.assert_close(masked, by_hand, rtol=0, atol=1e-6)

def test_cpu_reruns_bit_identical(tiny):
    model, tok = tiny
    f = featurize_task('mnli', need(MNLI), tok, limit=1)[0]
    a, b = attribute(model, f, n_steps=8), attribute(model, f, n_steps=8)
    assert torch.equal(a.attributions, b.attributions) and torch.equal(a.delta, b.delta)

@pytest.mark.parametrize('family', ['bert', 'roberta', 'distilbert', 'albert', 'electra', 'xlm-roberta', 'camembert', 'mobilebert'])
def test_families(family):
    model = tiny_model(family)
    ids = torch.tensor([[2, 10, 11, 12, 3, 13, 3]])
    res = attribute(model, dict(input_ids=ids), n_steps=6)
    L, H = num_layers_heads(model)
    assert res.attributions.shape == (L, H, 7, 7)
    assert res.delta.abs().max() < 1e-2 * max(1e-3, abs(res.f_input - res.f_baseline).max())

@pytest.mark.parametrize('family', ['deberta', 'deberta-v2', 'mpnet', 'xlnet', 'longformer'])
def test_unsupported_families_raise(family):
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from attattr.hooks import hook_model, UnsupportedModelError
    kw = dict(vocab_size=40, num_labels=2)
    kw |= dict(d_model=16, n_layer=1, n_head=2, d_inner=16) if family == 'xlnet' else dict(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    if family == 'longformer': kw |= dict(attention_window=4, pad_token_id=1, bos_token_id=0, eos_token_id=2, sep_token_id=2)
    m = AutoModelForSequenceClassification.from_config(AutoConfig.for_model(family, **kw))
    with pytest.raises(UnsupportedModelError, match=f"unsupported model type '{family}'"): hook_model(m)

@pytest.mark.parametrize('family', ['bert', 'roberta', 'distilbert', 'albert', 'electra', 'mobilebert'])
def test_batch_of_examples_equals_one_by_one(family):
    "Examples of different lengths in one call (padded rows, per-example targets and head masks) = one at a time."
    model = tiny_model(family)
    L, H = num_layers_heads(model)
    xs = [dict(input_ids=torch.tensor([2, 10, 11, 12, 3, 13, 3])), dict(input_ids=torch.tensor([2, 14, 15, 3, 16])),
          dict(input_ids=torch.tensor([2, 17, 3]))]
    masks = torch.ones(len(xs), L, H); masks[1, 0, 1] = 0; masks[2, -1, 0] = 0
    kw = dict(n_steps=4, layers=[L - 1, 0], internal_batch_size=3)  # unsorted layers, two chunks of points
    batch = attribute(model, xs, target=[None, 1, 0], head_mask=masks, **kw)
    for x, t, mk, r in zip(xs, [None, 1, 0], masks, batch):
        one = attribute(model, x, target=t, head_mask=mk, **kw)
        assert r.target == one.target and r.layers == [L - 1, 0]
        torch.testing.assert_close(r.attributions, one.attributions, rtol=1e-4, atol=1e-5 * one.attributions.abs().max().item())
        torch.testing.assert_close(r.delta, one.delta, rtol=1e-3, atol=1e-6)

@pytest.mark.parametrize('fam', ['bert', 'distilbert', 'albert'])
def test_shortcuts_change_nothing(fam):
    "The [CLS]-only last layer and the shared projections of the copies give the attributions of the plain kernel."
    model, tok = tiny_model(fam, layers=3), tiny_tokenizer()
    fs = featurize_task('mnli', need(MNLI), tok, limit=3)
    L, H = num_layers_heads(model)
    hm = torch.ones(L, H); hm[L - 1, 1] = 0
    cases = [dict(inputs=fs[0]), dict(inputs=fs[0], layers=[0, L - 1]), dict(inputs=fs[0], layers=[1]),
             dict(inputs=fs[0], baselines='pos'), dict(inputs=fs[0], head_mask=hm), dict(inputs=fs[:3])]
    def run(shortcuts, kw):
        hook_model(model, cls_only=shortcuts, cls_query=shortcuts, share_projections=shortcuts)
        r = attribute(model, n_steps=5, **kw)
        return r if isinstance(r, list) else [r]
    for kw in cases:
        for fast, slow in zip(run(True, kw), run(False, kw)):
            assert rel(fast.attributions, slow.attributions) <= 1e-5
            assert (fast.delta - slow.delta).abs().max() <= 1e-6
    assert not model.attattr.projections and not model.attattr.cls_only  # the plain kernel did run

@pytest.mark.parametrize('heads', [{0: [1], 1: [2], 2: [0]}, {0: [0, 3], 2: [1]}], ids=['equal', 'unequal'])
def test_pruned_copy_equals_masked(heads):
    "attribute on a copy with heads removed from its weights = attribute with the same heads masked (zeros there)."
    from attattr.pruning import pruned_copy
    model, tok = tiny_model('bert', layers=3), tiny_tokenizer()
    fs = featurize_task('mnli', need(MNLI), tok, limit=2)
    L, H = num_layers_heads(model)
    mask = torch.ones(L, H)
    for l, hs in heads.items(): mask[l, hs] = 0
    full = attribute(model, fs[0], n_steps=5)
    small = pruned_copy(model, heads)
    assert [len(small.attattr.heads(l)) for l in range(L)] == [H - len(heads.get(l, [])) for l in range(L)]
    for kw in (dict(inputs=fs[0]), dict(inputs=fs[0], layers=[2, 0]), dict(inputs=fs)):
        masked, pruned = attribute(model, n_steps=5, head_mask=mask, **kw), attribute(small, n_steps=5, **kw)
        for m, p in zip(*[r if isinstance(r, list) else [r] for r in (masked, pruned)]):
            assert p.attributions.shape == m.attributions.shape
            assert rel(p.attributions, m.attributions) <= 1e-5
            torch.testing.assert_close(p.logits, m.logits, rtol=1e-5, atol=1e-6)
            for l, hs in heads.items(): assert p.attentions[l, hs].abs().max() == 0  # pruned heads: zeros
    # a mask in the original numbering also works on the pruned copy (here: masking what is gone already)
    assert rel(attribute(small, fs[0], n_steps=5, head_mask=mask).attributions, pruned_one := attribute(small, fs[0], n_steps=5).attributions) <= 1e-6
    assert rel(attribute(model, fs[0], n_steps=5).attributions, full.attributions) == 0  # the original is untouched

def test_target_by_label_name():
    "A classifier's target can be named by its label; an unknown name is one clear line listing the labels."
    from attattr.core import AttattrError
    model, tok = tiny_model('bert'), tiny_tokenizer()
    f = featurize_task('mnli', need(MNLI), tok, limit=1)[0]
    assert attribute(model, f, target='LABEL_2', n_steps=2).target == 2
    with pytest.raises(AttattrError, match="'foo' is not a label of the model \\(labels: LABEL_0, LABEL_1, LABEL_2\\)"):
        attribute(model, f, target='foo', n_steps=2)

@pytest.mark.parametrize('shortcuts', [True, False])
def test_query_rows_equal_full_rows(tiny, shortcuts):
    "`queries`: the attribution of those query rows only, equal to the full result's rows (encoder, [CLS] shortcut or not)."
    model, tok = tiny
    hook_model(model, cls_only=shortcuts, cls_query=shortcuts)
    fs = featurize_task('mnli', need(MNLI), tok, limit=2)
    full = attribute(model, fs, n_steps=5)
    sub = attribute(model, fs, n_steps=5, queries=[0, 3, -1], internal_batch_size=2)
    for f, s in zip(full, sub):
        n = f.attributions.shape[-1]
        assert s.queries == [0, 3, n - 1] and s.delta is None and s.f_baseline is not None
        assert rel(s.attributions, f.attributions[:, :, [0, 3, n - 1]]) <= 1e-6
    from attattr.core import AttattrError
    with pytest.raises(AttattrError, match='out of range'): attribute(model, fs[0], n_steps=2, queries=[999])
    auto, ref = attribute(model, fs, n_steps='auto', queries=[0, -1]), attribute(model, fs, n_steps=512, queries=[0, -1])
    for a, r in zip(auto, ref):  # n_steps='auto' on query rows: within tol of 512 points, no delta (a subset of the rows)
        assert a.delta is None and a.points is not None and rel(a.attributions, r.attributions) <= 1e-3
    lean = attribute(model, fs, n_steps=5, queries=[0, 3, -1], return_attentions=False, layers=[1])  # the attributed layers' only
    for f, s in zip(full, lean):
        n = f.attributions.shape[-1]
        assert s.attentions is None and rel(s.attributions, f.attributions[[1]][:, :, [0, 3, n - 1]]) <= 1e-6
    hook_model(model)
