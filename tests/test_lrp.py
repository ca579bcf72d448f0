"AttnLRP (attattr.lrp): the model is left as it was, relevance is conserved as the rules say, unsupported models are refused."
import pytest, torch
from attattr.core import AttattrError
from attattr.lrp import attnlrp, lrp, lrp_token_relevance, lrp_edge_relevance, _lrp_logits
from attattr.testing import tiny_model, tiny_tokenizer, tiny_causal_model, tiny_causal_classifier

IDS = torch.tensor([[2, 7, 9, 11, 8, 30]])  # (1, n) a prompt of tiny-vocabulary ids


def n_hooks(model): return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def absorbed(model, x, t):
    "Logit `t`, the tokens' relevance, the softmax's absorbed relevance, and the biases' and other embeddings' (ε = 0)."
    with attnlrp(model, 0., keep_scores=True) as st, torch.enable_grad():
        logit = _lrp_logits(model, x, st)[0, t]
        ps = [p for n, p in model.named_parameters() if n.endswith('bias') or 'position_emb' in n or 'token_type' in n]
        g = torch.autograd.grad(logit, [st.embeds, *st.probs, *st.scores, *ps], allow_unused=True)
    L = len(st.probs)
    soft = sum((p * gp).sum() - (s * gs).nan_to_num().sum()
               for p, gp, s, gs in zip(st.probs, g[1:L + 1], st.scores, g[L + 1:2 * L + 1]))
    rest = sum((p * gb).sum() for p, gb in zip(ps, g[2 * L + 1:]) if gb is not None)
    return tuple(float(torch.as_tensor(v).detach()) for v in (logit, (st.embeds * g[0]).sum(), soft, rest))


def random_biases(model, seed=0):
    "Give every bias a random value (transformers initialises them to zero), so that what they absorb is tested."
    torch.manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith('bias'): p.normal_(0, 0.5)
    return model


def bert_inputs():
    return dict(tiny_tokenizer()("the dog sits in the park", "a man plays outside"))


@pytest.mark.parametrize('family', ['llama', 'mistral', 'qwen2', 'qwen3'])
def test_conservation_decoders(family):
    model = tiny_causal_model(family).double()
    logit, toks, soft, rest = absorbed(model, dict(input_ids=IDS), 5)
    assert rest == 0  # no biases (qwen2's q/k/v biases start at zero)
    assert abs(toks + soft - logit) < 1e-9 * max(1, abs(logit)), (toks, soft, logit)


def test_conservation_qwen2_biases_counted():
    model = random_biases(tiny_causal_model('qwen2').double())
    logit, toks, soft, rest = absorbed(model, dict(input_ids=IDS), 5)
    assert abs(rest) > 1e-3
    assert abs(toks + soft + rest - logit) < 1e-9 * max(1, abs(logit))


def test_conservation_bert_and_classifiers():
    model = random_biases(tiny_model('bert').double())
    x = {k: torch.tensor([v]) for k, v in tiny_tokenizer()("the dog sits", "a man plays").items()}
    for t in range(3):
        logit, toks, soft, rest = absorbed(model, x, t)
        assert abs(rest) > 1e-3
        assert abs(toks + soft + rest - logit) < 1e-9 * max(1, abs(logit))
    clf = tiny_causal_classifier('llama').double()
    logit, toks, soft, rest = absorbed(clf, dict(input_ids=IDS), 1)
    assert abs(toks + soft + rest - logit) < 1e-9 * max(1, abs(logit))


def test_uniform_attention_edges_absorbed():
    "Zero query/key weights: the scores are zero, so all relevance reaching the probabilities (the edges') stops there."
    model = tiny_causal_model('llama').double()
    with torch.no_grad():
        for l in model.model.layers: l.self_attn.q_proj.weight.zero_(); l.self_attn.k_proj.weight.zero_()
    r = lrp(model, dict(input_ids=IDS), 5, epsilon=0.)
    assert abs(float(r.tokens.sum() + r.edges.sum()) - r.logit) < 1e-9 * max(1, abs(r.logit))


@pytest.mark.parametrize('make', [lambda: tiny_model('bert'), lambda: tiny_causal_model('llama'),
                                  lambda: tiny_causal_model('qwen2', attn_implementation='eager')])
def test_model_restored(make):
    model = make()
    x = bert_inputs() if model.config.model_type == 'bert' else dict(input_ids=IDS[0].tolist())
    xt = {k: torch.tensor([v]) for k, v in x.items()}
    model.train(False)
    before, impl, hooks = model(**xt).logits.detach(), model.config._attn_implementation, n_hooks(model)
    lrp_token_relevance(model, x); lrp_edge_relevance(model, x)
    assert torch.equal(model(**xt).logits.detach(), before)
    assert model.config._attn_implementation == impl and n_hooks(model) == hooks and not model.training
    assert all(p.grad is None for p in model.parameters())  # nothing accumulated in the user's parameters
    model.train(True)
    lrp(model, x)
    assert model.training  # the mode is restored too


def test_restored_after_error():
    model = tiny_causal_model('llama')
    impl, hooks = model.config._attn_implementation, n_hooks(model)
    with pytest.raises(AttattrError): lrp(model, dict(input_ids=[[1, 2], [3, 4]]))
    with pytest.raises(RuntimeError):
        with attnlrp(model): raise RuntimeError('inside')
    assert model.config._attn_implementation == impl and n_hooks(model) == hooks


def test_targets_and_shapes():
    model = tiny_model('bert')
    x = bert_inputs(); n = len(x['input_ids'])
    r = lrp(model, x)
    assert r.tokens.shape == (n,) and r.edges.shape == (2, 4, n, n)
    xt = {k: torch.tensor([v]) for k, v in x.items()}
    assert r.target == int(model(**xt).logits.argmax())
    assert not torch.equal(lrp_token_relevance(model, x, target=(r.target + 1) % 3), r.tokens)
    lm = tiny_causal_model('llama')
    r = lrp(lm, dict(input_ids=IDS))
    assert r.target == int(lm(input_ids=IDS).logits[0, -1].argmax())
    assert r.edges.shape == (2, 4, 6, 6) and float(r.edges.triu(1).abs().sum()) == 0


def test_padding_cropped():
    "A left-padded decoder input gives the relevance of its real tokens, as without the padding."
    lm = tiny_causal_model('llama')
    plain = lrp_token_relevance(lm, dict(input_ids=IDS[0]))
    padded = lrp_token_relevance(lm, dict(input_ids=torch.cat([torch.zeros(3, dtype=torch.long), IDS[0]]),
                                          attention_mask=torch.tensor([0, 0, 0] + [1] * 6)))
    assert torch.allclose(plain, padded)


@pytest.mark.parametrize('family', ['roberta', 'electra'])
def test_conservation_other_encoders(family):
    model = random_biases(tiny_model(family).double())
    x = {k: torch.tensor([v]) for k, v in tiny_tokenizer()("the dog sits", "a man plays").items() if k != 'token_type_ids'}
    logit, toks, soft, rest = absorbed(model, x, 1)
    assert abs(toks + soft + rest - logit) < 1e-9 * max(1, abs(logit))


@pytest.mark.parametrize('make', [lambda: tiny_model('distilbert'), lambda: tiny_model('albert'),
                                  lambda: tiny_causal_model('gpt2'), lambda: tiny_causal_model('gemma2')])
def test_unsupported(make):
    model = make()
    hooks = n_hooks(model)
    with pytest.raises(AttattrError, match='unsupported model type'): lrp_token_relevance(model, dict(input_ids=IDS))
    assert n_hooks(model) == hooks


def test_features_input():
    "A padded `Features` (as the dataset runs make them) gives the relevance of its real tokens."
    from attattr.data import featurize
    from attattr.testing import planted_examples, PLANTED_LABELS
    f = featurize(planted_examples(1), tiny_tokenizer(), PLANTED_LABELS, max_seq_length=16)[0]
    model = tiny_model('bert')
    n = int(sum(f.attention_mask))
    r = lrp_token_relevance(model, f)
    real = {k: getattr(f, k)[:n] for k in ('input_ids', 'attention_mask', 'token_type_ids')}
    assert r.shape == (n,) and torch.allclose(r, lrp_token_relevance(model, real))


@pytest.mark.parametrize('family', ['mistral', 'qwen2'])
def test_sliding_window_logit(family):
    "The rules leave the forward as it was, sliding windows included: the explained logit is the model's."
    model = tiny_causal_model(family, attn_implementation='eager')
    r = lrp(model, dict(input_ids=IDS))  # 6 tokens, window 4
    assert abs(r.logit - float(model(input_ids=IDS).logits[0, -1, r.target].detach())) < 1e-5
