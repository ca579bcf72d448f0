"`attribute(..., n_steps='auto')`: adaptive Clenshaw–Curtis points per example and layer until `tol` is met, within `max_steps`."
import re
import pytest, torch
import attattr.attribution as A
from attattr.attribution import DEFAULT_MAX_STEPS, ROUNDING, attribute
from attattr.core import AttattrError
from attattr.testing import TINY_CAUSAL_INIT, tiny_causal_model, tiny_model

REF_STEPS = 512  # Gauss–Legendre points of the reference the tolerance is checked against
CLOSE = 1e-5  # relative difference allowed between runs that differ only in batching (float32 sums in another order)

pytestmark = pytest.mark.usefixtures('one_thread')

def ids(*t): return dict(input_ids=torch.tensor(t))
ENC = [ids(2, 10, 11, 12, 13, 3, 14, 15, 3), ids(2, 20, 21, 3, 22, 3), ids(2, 30, 31, 32, 33, 34, 35, 36, 3, 37, 38, 3)]
DEC = [ids(5, 17, 23, 9, 41, 17, 23), ids(7, 3, 30, 12), ids(9, 9, 14, 40, 2, 33)]

@pytest.fixture(scope='module')
def enc():
    "A tiny bert with weights 10× transformers' init: at 0.02 attention hardly moves F (F(A) − F(B) ≈ 1e-5), a test of nothing."
    m = tiny_model('bert', layers=3)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() > 1: p.normal_(std=TINY_CAUSAL_INIT)
    return m

@pytest.fixture(scope='module')
def dec(): return tiny_causal_model('llama')  # random, sharp attention: layer 0 needs tens of points at tol 1e-4

def rel(a, b): return ((a - b).abs().amax((1, 2, 3)) / b.abs().amax((1, 2, 3)))  # (layers,) relative to each layer's max

def complete(r, tol):
    "Whether each layer's |delta| ≤ tol·|F(A) − F(B)|, up to float32 rounding of F(A), F(B) and Σ|Attr| (`ROUNDING`)."
    slack = ROUNDING * (abs(r.f_input) + r.f_baseline.abs() + r.attributions.double().abs().sum((1, 2, 3)))
    return (r.delta.abs() <= tol * (r.f_input - r.f_baseline).abs() + slack).all()

def meets(r, ref, tol):
    "The auto result `r` is within `tol` of the reference scores and of completeness, layer by layer."
    assert (r.points <= DEFAULT_MAX_STEPS).all() and r.n_steps == int(r.points.max())
    assert (rel(r.attributions, ref.attributions) <= tol).all(), rel(r.attributions, ref.attributions)
    assert complete(r, tol) and (r.change <= tol).all(), (r.residual, r.change)
    assert complete(ref, tol / 10)  # the reference itself is far more accurate than tol

@pytest.mark.parametrize('tol', [1e-3, 1e-4])
def test_meets_tol_against_reference_encoder(enc, tol):
    for x in ENC[:2]:
        r, ref = attribute(enc, x, n_steps='auto', tol=tol), attribute(enc, x, n_steps=REF_STEPS)
        meets(r, ref, tol)
        assert r.method == 'adaptive_clenshaw_curtis' and r.tol == tol

@pytest.mark.parametrize('tol', [1e-3, 1e-4])
def test_meets_tol_against_reference_decoder(dec, tol):
    for x in DEC[:2]:
        r, ref = attribute(dec, x, n_steps='auto', tol=tol), attribute(dec, x, n_steps=REF_STEPS)
        meets(r, ref, tol)
    assert len(set(r.points.tolist())) > 1  # layers stop at different points

def test_contrast_and_pos_baseline(dec, enc):
    x, tol = DEC[0], 1e-3
    kw = dict(target=9, contrast=41, output='logit')
    meets(attribute(dec, x, n_steps='auto', tol=tol, **kw), attribute(dec, x, n_steps=REF_STEPS, **kw), tol)
    meets(attribute(enc, ENC[0], n_steps='auto', tol=tol, baselines='pos'),
          attribute(enc, ENC[0], n_steps=REF_STEPS, baselines='pos'), tol)

def test_never_more_points_than_cap_and_only_unconverged_pairs_run(dec, monkeypatch):
    "Every point run is one of a pair's reported points: converged layers/examples are not run again."
    run, real = [], A._gradients
    def counting(model, x, Ls, alphas, *args):
        run.append(len(Ls) * x['input_ids'].shape[0] * alphas.shape[-1])  # (layer, example, point) rows; alphas (k,) or (T, k)
        return real(model, x, Ls, alphas, *args)
    monkeypatch.setattr(A, '_gradients', counting)
    rs = attribute(dec, DEC, n_steps='auto', tol=1e-3, max_steps=70)
    assert sum(run) == sum(int(r.points.sum()) for r in rs)
    assert all((r.points <= 70).all() for r in rs) and max(int(r.points.max()) for r in rs) > 9
    assert all((r.points % 2 == 1).all() for r in rs)  # 5 points, then 2^j more per level raised, 6 per panel split

def test_cap_error_names_pair_residual_and_cap(dec):
    with pytest.raises(AttattrError) as e: attribute(dec, [DEC[1], DEC[0]], n_steps='auto', tol=1e-4, max_steps=20)
    msg = str(e.value)
    assert '\n' not in msg and 'within max_steps=20 points' in msg and 'tol=0.0001' in msg, msg
    assert re.search(r"example \d, layer 0 stopped at residual \d\.\d\de-\d\d of \|F\(A\) − F\(B\)\| and change "
                     r"\d\.\d\de-\d\d of its largest score after \d+ points \(\d example-layer pairs short\); raise max_steps "
                     r"or tol", msg), msg
    with pytest.raises(AttattrError, match=r"example 0, layer 0 stopped .* after 5 points \(1 example-layer pair short\)"):
        attribute(dec, DEC[0], n_steps='auto', tol=1e-4, max_steps=8, layers=[0])

def test_batch_equals_one_at_a_time(dec, enc):
    for model, xs in ((dec, DEC), (enc, ENC)):
        together = attribute(model, xs, n_steps='auto', tol=1e-4)
        for x, r in zip(xs, together):
            one = attribute(model, x, n_steps='auto', tol=1e-4)
            assert torch.equal(r.points, one.points)
            assert (rel(r.attributions, one.attributions) < CLOSE).all()
            torch.testing.assert_close(r.delta, one.delta, rtol=0, atol=CLOSE * abs(one.f_input))

def test_per_example_head_mask_in_a_batch(enc):
    mask = torch.ones(2, 3, 4); mask[0, 1, 2] = 0; mask[1, 0, :2] = 0  # (b, L, h)
    together = attribute(enc, ENC[:2], n_steps='auto', tol=1e-4, head_mask=mask)
    for x, mk, r in zip(ENC, mask, together):
        one = attribute(enc, x, n_steps='auto', tol=1e-4, head_mask=mk)
        assert torch.equal(r.points, one.points) and (rel(r.attributions, one.attributions) < CLOSE).all()

def test_layer_subsets(dec):
    full = attribute(dec, DEC[0], n_steps='auto', tol=1e-4)
    for layers in ([1], [1, 0]):
        sub = attribute(dec, DEC[0], n_steps='auto', tol=1e-4, layers=layers)
        assert sub.layers == layers and sub.attributions.shape[0] == len(layers)
        assert torch.equal(sub.points, full.points[layers])
        assert (rel(sub.attributions, full.attributions[layers]) < CLOSE).all()

def test_integer_steps_untouched_and_bad_settings(enc):
    r = attribute(enc, ENC[0], n_steps=8)
    assert r.points is None and r.change is None and r.tol is None and r.n_steps == 8 and r.method == 'gauss_legendre'
    a = attribute(enc, ENC[0], n_steps='auto', return_convergence_delta=False)
    assert a.delta is not None  # auto needs the residual: always computed
    for kw, msg in [(dict(n_steps='many'), "n_steps must be an integer ≥ 1 or 'auto'"),
                    (dict(n_steps='auto', method='riemann_left'), "cannot be combined"),
                    (dict(n_steps='auto', tol=0), 'tol must be a number in (0, 1)'),
                    (dict(n_steps='auto', tol='1e-3'), 'tol must be a number in (0, 1)'),
                    (dict(n_steps='auto', max_steps=4), 'max_steps must be an integer ≥ 5')]:
        with pytest.raises(AttattrError, match=None) as e: attribute(enc, ENC[0], **kw)
        assert msg in str(e.value), (kw, str(e.value))
