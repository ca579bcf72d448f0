"The kernel on a CUDA device: the same numbers as on the CPU, bfloat16 close to float32, batched runs, dataset runs."
import pytest, torch
import reference as R
from conftest import MINILM, MNLI, need
from attattr.attribution import FAITHFUL, attribute
from attattr.data import collate, featurize_task
from attattr.models import load_model
from attattr.runs import attribute_split, load_split_results

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
TOL = 1e-4  # max relative difference, as against the reference on the CPU
BF16_TOL = 5e-2  # bfloat16 autocast against float32: about 1e-2 measured

def rel(a, b): return ((a - b).abs().max() / b.abs().max()).item()

@pytest.fixture(scope='module')
def both():
    (cpu, tok), gpu = load_model(need(MINILM)), load_model(MINILM, device='cuda')[0]
    return cpu, gpu, tok, featurize_task('mnli', need(MNLI), tok, limit=12)

def test_gpu_equals_cpu_and_reference(both):
    cpu, gpu, _, feats = both
    f = feats[4]
    on_gpu, on_cpu = attribute(gpu, f, **FAITHFUL), attribute(cpu, f, **FAITHFUL)
    assert rel(on_gpu.attributions, on_cpu.attributions) <= TOL
    x = {k: v.cuda() for k, v in collate([f], pad_to=128).items() if k != 'labels'}
    with torch.device('cuda'): ref = R.reference_attribution(R.wrap(gpu), x).cpu()
    assert rel(on_gpu.attributions, ref) <= TOL

def test_gpu_batch_and_bf16(both):
    cpu, gpu, _, feats = both
    batch = attribute(gpu, feats, n_steps=8)
    half = attribute(gpu, feats, n_steps=8, autocast_dtype=torch.bfloat16)
    for f, r, h in zip(feats, batch, half):
        one = attribute(cpu, f, n_steps=8)
        assert r.target == one.target and rel(r.attributions, one.attributions) <= TOL
        assert rel(h.attributions, r.attributions) <= BF16_TOL

def test_gpu_split_run(both, tmp_path):
    cpu, gpu, tok, feats = both
    attribute_split(gpu, tok, "mnli", MNLI, tmp_path/"g", num_examples=20, n_steps=4, progress=False)  # 8 per call
    attribute_split(cpu, tok, 'mnli', MNLI, tmp_path/'c', num_examples=20, n_steps=4, progress=False)  # 1 per call
    g, c = load_split_results(tmp_path/'g'), load_split_results(tmp_path/'c')
    assert sorted(g) == sorted(c) == list(range(20))
    for i in c: assert rel(g[i].attributions, c[i].attributions) <= TOL

def test_gpu_bf16_weights(both):
    "A model loaded in bfloat16 keeps the [CLS]-only shortcut and stays close to float32."
    cpu, gpu, _, feats = both
    half = load_model(MINILM, device='cuda', dtype=torch.bfloat16)[0]
    assert half.attattr.cls_only and half.attattr.cls_query
    for f in feats[:3]:
        assert rel(attribute(half, f, n_steps=8).attributions, attribute(gpu, f, n_steps=8).attributions) <= BF16_TOL

@pytest.mark.parametrize('family', ['llama', 'gemma2', 'gpt2'])
def test_gpu_decoder_equals_cpu(family):
    "A decoder on CUDA (grouped queries, soft-capping, gpt2's expanded read row): the CPU's scores, fixed points and 'auto' on the last row."
    from attattr.testing import tiny_causal_model
    cpu, gpu = tiny_causal_model(family), tiny_causal_model(family).cuda()
    xs = [dict(input_ids=torch.tensor([2, 11, 23, 7, 31, 11, 23, 40, 9, 17])), dict(input_ids=torch.tensor([2, 30, 8, 12, 5, 44]))]
    for kw in (dict(n_steps=8), dict(n_steps='auto', queries=[-1], return_attentions=False, max_steps=512)):
        for g, c in zip(attribute(gpu, xs, **kw), attribute(cpu, xs, **kw)):
            assert g.target == c.target and rel(g.attributions, c.attributions) <= (TOL if kw['n_steps'] == 8 else 1e-3)
    assert gpu.attattr.cls_query and gpu.attattr.expand_read == (family == 'gpt2')
