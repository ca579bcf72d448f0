"Decoder-only models: attattr's attribution against the slow reference of `tests/causal_reference.py`, family by family."
import pytest, torch
from causal_reference import reference_attribution
from attattr.attribution import attribute, attribute_continuation
from attattr.hooks import hook_model
from attattr.testing import CAUSAL_FAMILIES, tiny_causal_classifier, tiny_causal_model

PROMPT = [2, 11, 23, 7, 31, 11, 23, 40, 9, 17]  # token ids of a tiny prompt, longer than the sliding windows
SHORT = [2, 30, 8, 12, 5, 44]  # a shorter one, padded in a batch with PROMPT
STEPS = 6  # integration points (Gauss–Legendre); the reference uses the same ones
TOL = 1e-4  # relative to the largest entry: float32 kernel against the float64 reference


def rel(a, b): return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()


@pytest.mark.parametrize('family', CAUSAL_FAMILIES)
def test_family_matches_reference(family):
    "Every layer and query head of every family: the next token's log-prob, a contrast, the shortcuts on and off."
    model = tiny_causal_model(family)
    x = dict(input_ids=torch.tensor(PROMPT))
    ours = attribute(model, x, n_steps=STEPS, output='log_prob')
    ref = reference_attribution(model, x, target=ours.target, output='log_prob', n_steps=STEPS)
    assert ours.attributions.shape == ref.attributions.shape
    assert rel(ours.attributions, ref.attributions) <= TOL
    assert abs(ours.f_input - ref.f_input) <= 1e-5 * max(1., abs(ref.f_input))
    torch.testing.assert_close(ours.f_baseline.double(), ref.f_baseline, rtol=1e-4, atol=1e-5)
    c = attribute(model, x, n_steps=STEPS, output='logit', target=5, contrast=9)
    cref = reference_attribution(model, x, target=5, contrast=9, output='logit', n_steps=STEPS)
    assert rel(c.attributions, cref.attributions) <= TOL
    assert model.attattr.cls_query  # the last layer on the read row
    assert model.attattr.expand_read == (family == 'gpt2')  # gpt2 reshapes its final states to n rows: the read row's viewed as n
    hook_model(model, cls_only=False, cls_query=False, share_projections=False)
    assert rel(attribute(model, x, n_steps=STEPS, output='log_prob').attributions, ref.attributions) <= TOL


@pytest.mark.parametrize('family', ['llama', 'gemma2', 'gpt2'])
def test_left_padded_batch_matches_reference(family):
    "Prompts of different lengths attributed together (padded on the left, with their own positions) = each alone."
    model = tiny_causal_model(family)
    both = attribute(model, [dict(input_ids=torch.tensor(PROMPT)), dict(input_ids=torch.tensor(SHORT))], n_steps=STEPS)
    for r, p in zip(both, (PROMPT, SHORT)):
        ref = reference_attribution(model, dict(input_ids=torch.tensor(p)), target=r.target, output='prob', n_steps=STEPS)
        assert rel(r.attributions, ref.attributions) <= TOL


@pytest.mark.parametrize('family', ['llama', 'gpt2'])
def test_decoder_classifier_matches_reference(family):
    "A decoder with a classification head, read at the last token."
    model = tiny_causal_classifier(family)
    x = dict(input_ids=torch.tensor(PROMPT))
    ours = attribute(model, x, n_steps=STEPS, target=1)
    ref = reference_attribution(model, x, target=1, output='prob', n_steps=STEPS)
    assert rel(ours.attributions, ref.attributions) <= TOL


def test_continuation_steps_match_reference():
    "Each step of a teacher-forced continuation is the reference attribution of its prompt and next token."
    model = tiny_causal_model('qwen2')
    c = attribute_continuation(model, dict(input_ids=torch.tensor(SHORT)), [7, 31, 11], n_steps=STEPS, output='log_prob')
    for t, s in enumerate(c.steps):
        ref = reference_attribution(model, dict(input_ids=torch.tensor(SHORT + [7, 31, 11][:t])), target=[7, 31, 11][t],
                                    output='log_prob', n_steps=STEPS)
        assert rel(s.attributions, ref.attributions) <= TOL


def test_induction_circuit_found():
    """On the shipped 2-layer induction model, a prompt whose second half repeats its first: the strongest layer-1 edge
    runs from the last position to the token after the earlier occurrence of the current token."""
    import random
    from pathlib import Path
    from attattr.models import load_model
    model, tok = load_model(Path(__file__).resolve().parents[1]/'examples'/'models'/'induction-2l')
    rng = random.Random(0)
    for _ in range(20):
        seq = [f't{i}' for i in rng.sample(range(64), rng.randint(5, 12))]
        k = rng.randint(1, len(seq) - 1)  # the prompt repeats the first k tokens: the next one is seq[k]
        ids = tok.convert_tokens_to_ids(['<bos>'] + seq + seq[:k])
        r = attribute(model, dict(input_ids=torch.tensor(ids)), n_steps=8)
        assert tok.convert_ids_to_tokens(r.target) == seq[k]  # the model predicts the repeat
        edges = r.attributions[1].sum(0)[-1]  # (n,): layer 1, heads summed, from the last position
        assert int(edges.argmax()) == 1 + k  # the token after the earlier occurrence of seq[k - 1]


@pytest.mark.parametrize('family', ['llama', 'qwen3', 'gpt_neox'])
def test_read_row_shortcut_with_baselines(family):
    "The last layer on the read row alone: same scores as on every row, with a baseline input and a left-padded batch."
    model = tiny_causal_model(family)
    x, base = dict(input_ids=torch.tensor(PROMPT)), dict(input_ids=torch.tensor(PROMPT[::-1]))
    on = attribute(model, x, n_steps=STEPS, baselines=base)
    batch_on = attribute(model, [x, dict(input_ids=torch.tensor(SHORT))], n_steps=STEPS, baselines='pos')
    assert model.attattr.cls_query
    hook_model(model, cls_query=False)
    off = attribute(model, x, n_steps=STEPS, baselines=base)
    batch_off = attribute(model, [x, dict(input_ids=torch.tensor(SHORT))], n_steps=STEPS, baselines='pos')
    assert rel(on.attributions, off.attributions) <= 1e-5
    for a, b in zip(batch_on, batch_off): assert rel(a.attributions, b.attributions) <= 1e-5
    assert on.attributions[-1, :, :-1].abs().max() == 0  # the last layer: only the read row's query counts


def test_input_longer_than_positions():
    "More tokens than the model's positions: one clear error, before anything runs."
    from attattr.core import AttattrError
    model = tiny_causal_model('gpt2')
    n = model.config.n_positions
    with pytest.raises(AttattrError, match=f"{n + 1} tokens, more than the model's {n} positions"):
        attribute(model, dict(input_ids=torch.arange(n + 1) % 50), n_steps=2)


def test_non_finite_logits():
    "A model with corrupt (NaN) weights: the non-finite logits are named, not 'unsupported model type'."
    from attattr.core import AttattrError
    model = tiny_causal_model('llama')
    with torch.no_grad(): model.model.layers[0].mlp.down_proj.weight[0, 0] = float('nan')
    with pytest.raises(AttattrError, match='non-finite logits'): hook_model(model)
    assert not hasattr(model, 'attattr')  # refused: left as it was
    ok = tiny_causal_model('llama'); hook_model(ok)
    with torch.no_grad(): ok.lm_head.weight[3, 0] = float('inf')
    with pytest.raises(AttattrError, match='non-finite logits'): attribute(ok, dict(input_ids=torch.tensor(PROMPT)), n_steps=2)


def test_memory_checked_before_starting(monkeypatch):
    "A request that cannot fit the free memory is refused before the first forward, naming what to reduce."
    from attattr import attribution
    from attattr.core import AttattrError
    model = tiny_causal_model('llama')
    x = dict(input_ids=torch.tensor(PROMPT))
    need = attribution._bytes_needed(hook_model(model), 1, len(PROMPT), 2, False, 1)
    monkeypatch.setattr(attribution, '_free_memory', lambda dev: need - 1)
    calls = []
    monkeypatch.setattr(attribution, '_record', lambda *a: calls.append(a))
    with pytest.raises(AttattrError, match=r'fewer layers at a time \(`layers`\).*internal_batch_size'): attribute(model, x, n_steps=2)
    assert not calls  # nothing ran
    monkeypatch.setattr(attribution, '_free_memory', lambda dev: need)
    with pytest.raises(TypeError): attribute(model, x, n_steps=2)  # it fits: the (stubbed) recording forward is reached


def test_query_rows_match_reference():
    "`queries` on a decoder (the last layer on the read row): the reference's rows, a left-padded batch included."
    model = tiny_causal_model('qwen2')
    x = dict(input_ids=torch.tensor(PROMPT))
    sub = attribute(model, [x, dict(input_ids=torch.tensor(SHORT))], n_steps=STEPS, queries=[2, -1])
    for r, p in zip(sub, (PROMPT, SHORT)):
        ref = reference_attribution(model, dict(input_ids=torch.tensor(p)), target=r.target, output='prob', n_steps=STEPS)
        assert r.queries == [2, len(p) - 1]
        assert rel(r.attributions, ref.attributions[:, :, [2, len(p) - 1]]) <= TOL
    auto = attribute(model, [x, dict(input_ids=torch.tensor(SHORT))], n_steps='auto', queries=[-1], return_attentions=False)
    for r, p in zip(auto, (PROMPT, SHORT)):  # n_steps='auto' on the last row of a left-padded batch: within tol of the reference
        ref = reference_attribution(model, dict(input_ids=torch.tensor(p)), target=r.target, output="prob", n_steps=128)
        assert r.attentions is None and rel(r.attributions, ref.attributions[:, :, [len(p) - 1]]) <= 1e-3
    first = attribute(model, x, n_steps=STEPS, queries=[0])  # the last layer's query rows other than the read row: zero
    assert first.attributions[-1].abs().max() == 0


def test_large_residual_warns():
    "Post-norm families at 20 Gauss–Legendre points leave a residual of tens of per cent: a warning says so; 'auto' fixes it."
    import warnings
    x = dict(input_ids=torch.tensor(PROMPT))
    with pytest.warns(UserWarning, match="completeness residual above 10%"): r = attribute(tiny_causal_model('gemma2'), x, n_steps=20)
    assert r.residual.max() > 0.1
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert attribute(tiny_causal_model('llama'), x, n_steps=20).residual.max() < 1e-3
        assert attribute(tiny_causal_model('gemma2'), x, n_steps='auto').residual.max() <= 1e-3
