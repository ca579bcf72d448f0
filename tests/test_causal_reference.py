"The slow causal-LM reference (tests/causal_reference.py) checked on its own: logits, masks, completeness, and against attattr on an encoder."
from pathlib import Path
import pytest, torch
from transformers import AutoModelForSequenceClassification
import causal_reference as R
from conftest import need
from attattr.attribution import attribute
from attattr.testing import (CAUSAL_FAMILIES, SLIDING_FAMILIES, TINY_CAUSAL_SIZES, tiny_causal_classifier,
                             tiny_causal_model, tiny_config, tiny_model, tiny_tokenizer)

TOL = 1e-4  # max relative difference allowed against attattr on an encoder (the bound)
LOGITS_TOL = 1e-5  # the reference forward at α = 1 against the model's own (float32) forward
IDS = torch.tensor([2, 12, 40, 7, 33, 21, 9, 54, 17, 60])  # a 10-token prompt of the tiny vocabulary
WINDOW = TINY_CAUSAL_SIZES['window']

def rel(a, b): return ((a - b).abs().max() / b.abs().max()).item()

pytestmark = pytest.mark.usefixtures('one_thread')

@pytest.fixture(scope='module')
def models():
    return {f: tiny_causal_model(f) for f in CAUSAL_FAMILIES}


@pytest.mark.parametrize('family', CAUSAL_FAMILIES)
def test_alpha_one_reproduces_logits(models, family):
    "At α = 1, replacing any layer's A leaves the logits of the model's own attention (sdpa or eager), padded or not."
    model = models[family]
    ref = R.reference_model(model)
    right = dict(input_ids=torch.cat([IDS[:7], torch.zeros(3, dtype=torch.long)]), attention_mask=torch.tensor([1] * 7 + [0] * 3))
    for x, rows in ((dict(input_ids=IDS), slice(None)), (right, slice(0, 7))):
        with torch.no_grad():
            z = model(**{k: v[None] for k, v in x.items()}).logits[0, rows]  # (n, V)
            for layer in (None, 0, 1):
                out, st = R.forward(ref, x, layer, 1.0)
                assert (out[0, rows] - z).abs().max().item() < LOGITS_TOL
                assert len(st.probs) == TINY_CAUSAL_SIZES['layers']
                assert all(m is not None for m in st.masks)  # eager_mask is registered: a causal model always gets one


@pytest.mark.parametrize('family', SLIDING_FAMILIES)
def test_sliding_window_layers_see_only_the_window(models, family):
    "The masks passed to sliding layers are checked (`check_mask`), and their probabilities vanish outside the window."
    _, st = R.forward(R.reference_model(models[family]), dict(input_ids=IDS))
    kinds = getattr(models[family].config, 'layer_types', None) or ['sliding_attention'] * len(st.probs)
    assert 'sliding_attention' in kinds
    for p, kind in zip(st.probs, kinds):  # (1, h, n, n)
        assert not bool(p.triu(1).any())
        assert bool(p.tril(-WINDOW).any()) == (kind == 'full_attention')


def test_check_mask_catches_a_missing_window():
    causal = torch.zeros(1, 1, 6, 6).masked_fill(torch.ones(6, 6, dtype=torch.bool).triu(1), torch.finfo(torch.float32).min)
    R.check_mask(causal)
    with pytest.raises(AssertionError, match='window 3'): R.check_mask(causal, sliding_window=3)
    with pytest.raises(AssertionError): R.check_mask(torch.zeros(1, 1, 6, 6))  # no causal pattern


def test_attention_options():
    "GQA head order (transformers' repeat_kv), soft-capping, and sinks: a -inf sink changes nothing, a finite one takes mass."
    torch.manual_seed(0)
    mod = torch.nn.Module().eval()
    q, k, v = torch.randn(1, 4, 5, 8), torch.randn(1, 2, 5, 8), torch.randn(1, 2, 5, 8)
    with R.replacing():
        o, p = R.reference_attention(mod, q, k, v, None, scaling=0.5)
        _, pc = R.reference_attention(mod, q, k, v, None, scaling=0.5, softcap=0.1)
        _, ps = R.reference_attention(mod, q, k, v, None, scaling=0.5, s_aux=torch.full((4,), -torch.inf))
        _, pf = R.reference_attention(mod, q, k, v, None, scaling=0.5, s_aux=torch.zeros(4))
    kk = k[:, [0, 0, 1, 1]]  # query heads 0, 1 read key head 0; heads 2, 3 key head 1
    torch.testing.assert_close(p, torch.softmax(q @ kk.transpose(2, 3) * 0.5, -1))
    torch.testing.assert_close(o, (p @ v[:, [0, 0, 1, 1]]).transpose(1, 2))
    assert not torch.allclose(pc, p) and (pc.amax(-1) - pc.amin(-1)).max() < (p.amax(-1) - p.amin(-1)).max()
    torch.testing.assert_close(ps, p)
    assert (pf.sum(-1) < 1).all()


def test_completeness_residual_shrinks(models):
    "Σ Attr → F(A) − F(0) as points grow (a pre-norm llama, and gpt2)."
    for fam, steps in (('llama', (4, 16, 64)), ('gpt2', (4, 8, 16))):
        err = [R.reference_attribution(models[fam], dict(input_ids=IDS), n_steps=m).delta.abs().max().item() for m in steps]
        assert err[0] > err[1] > err[2] and err[2] < 1e-5, (fam, err)


def test_post_norm_families_need_points_near_zero(models):
    "gemma2 normalises the attention output before the residual, so F(αA) jumps for α ≲ 1e-2: graded points converge, plain ones not."
    x = dict(input_ids=IDS)
    plain = R.reference_attribution(models['gemma2'], x, n_steps=32).delta.abs().max().item()
    graded = R.reference_attribution(models['gemma2'], x, points=R.graded_quadrature(32, 4)).delta.abs().max().item()
    assert graded < 0.1 * plain, (plain, graded)


@pytest.mark.parametrize('family', CAUSAL_FAMILIES)
def test_every_family_attributes(models, family):
    "Shapes (L, H, n, n), zero above the diagonal, completeness within 5 % of F(A) − F(0) with 32 graded points."
    r = R.reference_attribution(models[family], dict(input_ids=IDS), points=R.graded_quadrature(32, 4))
    L, H = TINY_CAUSAL_SIZES['layers'], TINY_CAUSAL_SIZES['heads']
    assert r.attributions.shape == (L, H, len(IDS), len(IDS)) and r.attributions.dtype == torch.float64
    assert not bool(r.attributions.triu(1).any())
    assert r.position == len(IDS) - 1 and r.target == int(r.logits[-1].argmax())
    gap = (r.f_input - r.f_baseline).abs()
    assert (r.delta.abs() <= 0.05 * gap + 1e-6).all(), (r.delta, gap)


def test_targets_and_contrast(models):
    "A contrast is the difference of the two logit attributions; prob/log_prob/position options change F as they say."
    m, x = models['qwen2'], dict(input_ids=IDS)
    a = R.reference_attribution(m, x, target=5, output='logit', n_steps=4)
    b = R.reference_attribution(m, x, target=9, output='logit', n_steps=4)
    c = R.reference_attribution(m, x, target=5, contrast=9, output='logit', n_steps=4)
    torch.testing.assert_close(c.attributions, a.attributions - b.attributions)
    lp = R.reference_attribution(m, x, target=5, output='log_prob', n_steps=4)
    torch.testing.assert_close(lp.f_input, float(a.logits[-1].log_softmax(-1)[5]))
    p = R.reference_attribution(m, x, target=5, output='prob', n_steps=4, position=4)
    torch.testing.assert_close(p.f_input, float(a.logits[4].softmax(-1)[5]))
    with pytest.raises(ValueError, match='unknown output'): R.objective(a.logits[None], 5, 'probability')
    with pytest.raises(ValueError, match='one example'): R.forward(R.reference_model(m), dict(input_ids=IDS.repeat(2, 1)))


def test_left_padding_with_positions_equals_unpadded(models):
    "Left padding, with position ids counted from the first real token, leaves the real tokens' attribution unchanged."
    m, n, pad = models['mistral'], len(IDS), 3
    x = dict(input_ids=torch.cat([torch.zeros(pad, dtype=torch.long), IDS]), attention_mask=torch.tensor([0] * pad + [1] * n),
             position_ids=torch.cat([torch.zeros(pad, dtype=torch.long), torch.arange(n)]))
    r0 = R.reference_attribution(m, dict(input_ids=IDS), n_steps=4)
    r1 = R.reference_attribution(m, x, n_steps=4)
    assert r1.position == pad + n - 1
    assert rel(r1.attributions[..., pad:, pad:], r0.attributions) < 1e-9


def test_decoder_classifier():
    "A *ForSequenceClassification decoder: F is a class of the pooled logits."
    clf = tiny_causal_classifier('llama')
    r = R.reference_attribution(clf, dict(input_ids=IDS), output='prob', n_steps=64)
    assert r.logits.shape == (3,) and r.delta.abs().max() < 1e-5


def test_encoder_agrees_with_attattr():
    "On an encoder classifier, where attattr is trusted, the reference gives attattr's attributions (F = prob of a class)."
    tok, model = tiny_tokenizer(), tiny_model()
    torch.manual_seed(0)
    plain = AutoModelForSequenceClassification.from_config(tiny_config()).eval()  # the same weights, not hooked
    plain.load_state_dict(model.state_dict())
    x = {k: torch.tensor(v) for k, v in tok('the dog is not a cat', 'i know exactly .').items()}
    for method, m in (('gauss_legendre', 6), ('riemann_left', 8)):
        ref = R.reference_attribution(plain, x, target=1, output='prob', n_steps=m, method=method)
        ours = attribute(model, x, target=1, output='prob', n_steps=m, method=method)
        assert rel(ours.attributions.double(), ref.attributions) < TOL
        assert rel(ours.attentions.double(), ref.attentions) < TOL
        torch.testing.assert_close(ours.f_baseline.double(), ref.f_baseline, atol=1e-5, rtol=1e-4)


INDUCTION = Path(__file__).resolve().parents[1]/'examples'/'models'/'induction-2l'  # examples/models/train_decoders.py

@pytest.mark.parametrize('seed', range(3))
def test_induction_model_strongest_layer1_edge(seed):
    "The shipped induction model on `<bos> s s`: the strongest layer-1 edge runs from the last position to the token after the earlier occurrence."
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(need(INDUCTION))  # offline: a WordLevel tokenizer saved with the model
    model = AutoModelForCausalLM.from_pretrained(INDUCTION).eval()
    g = torch.Generator().manual_seed(seed)
    words = [f't{i}' for i in torch.randperm(64, generator=g)[:6].tolist()]  # s: 6 distinct tokens
    x = tok(' '.join(words + words))  # <bos> s s: 13 tokens
    T = len(words)
    r = R.reference_attribution(model, x, layers=[1], n_steps=8)
    assert r.target == tok.convert_tokens_to_ids(words[0])  # it predicts the repeat going on
    A = r.attributions[0]  # (H, n, n): layer 1
    h, q, k = (int(i) for i in torch.unravel_index(A.argmax(), A.shape))
    assert (q, k) == (2 * T, T + 1)  # last position (s[T−1]) → the token after s[T−1]'s first occurrence
