"""attattr.lrp against the `lxt` package (AttnLRP's reference code): token relevance of the same models, inputs and targets.

lxt 2.1 patches transformers 4.52's model classes and does not import on transformers 5, so it runs in a side virtual
environment (`--side_python`, e.g. a venv with torch, `transformers==4.52.*` and `lxt==2.1.*`; lxt's other
dependencies are not needed for text models, see below). This script

1. builds tiny random models with transformers 5 (bert classifier; llama, qwen2 and qwen3 causal LMs, qwen2 with a
   sliding window longer than the inputs, whose meaning changed between the two transformers versions), plus the checkpoints in
   `examples/models` (minilm-l6-nli, induction-2l), and saves them with `save_pretrained`;
2. computes attattr's `lrp` relevance (ε = 0, the plain gradient lxt's efficient implementation uses, and the default
   ε) for a few inputs, for the predicted and another target;
3. runs itself in the side environment (`--side JSON`): lxt's `monkey_patch` on the family's transformers module, an
   eager-attention model loaded from the saved folder, `inputs_embeds` requiring grad, the target logit's backward,
   relevance = (embeddings × grad) summed over the embedding dimension, and each layer's attention probabilities ×
   their gradient (`output_attentions`) for the edges, written as JSON;
4. prints per model the max relative difference max_i |a_i − b_i| / max_i |b_i| over its examples and targets, for
   the tokens (ε = 0 and the default ε) and the edges (ε = 0).

lxt 2.1's `lxt.efficient` imports torchvision for its vision-transformer patches; when torchvision is absent (its CPU
build does not match every torch), the side run puts an empty stand-in module in its place before importing lxt.

    python -m venv SIDE && SIDE/bin/pip install torch==2.13.0 && SIDE/bin/pip install "transformers==4.52.*" \
        && SIDE/bin/pip install --no-deps "lxt==2.1.*"      # the side environment (CPU torch first, as tools/setup.sh)
    python bench/lrp_check.py --side_python SIDE/bin/python
"""
import argparse, json, os, subprocess, sys, tempfile
from pathlib import Path

EDGE_FACTOR = dict(bert=1., llama=.5, qwen2=.5, qwen3=.5)  # lxt halves the gradient of BERT's A·V output (so A's gradient
# × A is the A side already), but llama-style models' queries, keys (÷4) and values (÷2) instead: A's gradient × A is
# then twice its uniform-rule share
LXT_MODULES = dict(bert='transformers.models.bert.modeling_bert', llama='transformers.models.llama.modeling_llama',
                   qwen2='transformers.models.qwen2.modeling_qwen2', qwen3='transformers.models.qwen3.modeling_qwen3')


def side(job_path):
    "Runs in the side environment: lxt's token relevance for every case of the job file."
    import importlib, importlib.machinery, types, torch, transformers
    job = json.loads(Path(job_path).read_text())
    mods = {f: importlib.import_module(m) for f, m in LXT_MODULES.items()}
    try: import torchvision  # noqa: F401
    except Exception:  # lxt.efficient imports torchvision's vision_transformer for its ViT patches only
        def stub(name):
            m = types.ModuleType(name); m.__spec__ = importlib.machinery.ModuleSpec(name, None); return m
        tv, tvm, vt = stub('torchvision'), stub('torchvision.models'), stub('torchvision.models.vision_transformer')
        tv.models, tvm.vision_transformer, vt.nn = tvm, vt, torch.nn
        sys.modules.update({'torchvision': tv, 'torchvision.models': tvm, 'torchvision.models.vision_transformer': vt})
    from lxt.efficient import monkey_patch
    out = dict(versions=dict(torch=torch.__version__, transformers=transformers.__version__,
                             lxt=importlib.metadata.version('lxt')), cases=[])
    for f in sorted({c['family'] for c in job['cases']}): monkey_patch(mods[f])
    for c in job['cases']:
        auto = transformers.AutoModelForSequenceClassification if c['kind'] == 'cls' else transformers.AutoModelForCausalLM
        model = auto.from_pretrained(c['path'], attn_implementation='eager', torch_dtype=torch.float32).eval()
        x = {k: torch.tensor([v]) for k, v in c['inputs'].items()}
        emb = model.get_input_embeddings()(x.pop('input_ids')).detach().requires_grad_(True)
        o = model(inputs_embeds=emb, output_attentions=True, **x)
        logit = (o.logits[0] if o.logits.dim() == 2 else o.logits[0, -1])[c['target']]
        ge, *ga = torch.autograd.grad(logit, [emb, *o.attentions])
        half = EDGE_FACTOR[c['family']]
        edges = torch.stack([half * (a * g)[0] for a, g in zip(o.attentions, ga)])  # (L, H, n, n)
        out['cases'].append(dict(tokens=(emb * ge)[0].sum(-1).tolist(), edges=edges.tolist(), logit=float(logit)))
    print(json.dumps(out))


def build(folder):
    "Save the models with transformers 5; return the cases (model folder, kind, inputs, family)."
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    from attattr.testing import tiny_model, tiny_tokenizer, tiny_causal_model
    from attattr.hooks import unhook
    root, cases = Path(__file__).resolve().parent.parent, []
    tok = tiny_tokenizer()
    pairs = [("the dog sits in the park", "a man plays outside"), ("good movie", "bad film"),
             ("i don ' t know", "they do not know")]
    def add(name, model, kind, family, examples):
        p = Path(folder)/name; model.save_pretrained(p)
        cases.extend(dict(name=name, path=str(p), kind=kind, family=family, inputs=e) for e in examples)
    bert_inputs = [{k: v for k, v in tok(a, b).items()} for a, b in pairs]
    add('bert-tiny', unhook(tiny_model('bert', seed=1)), 'cls', 'bert', bert_inputs)
    minilm = root/'examples/models/minilm-l6-nli'
    if minilm.exists():
        from transformers import AutoTokenizer
        mt = AutoTokenizer.from_pretrained(minilm)
        add('minilm-l6-nli', AutoModelForSequenceClassification.from_pretrained(minilm, dtype=torch.float32), 'cls', 'bert',
            [dict(mt("a man is playing a guitar on stage", "a person plays music")),
             dict(mt("the cat sleeps on the sofa", "a dog runs in the park"))])
    g = torch.Generator().manual_seed(0)
    ids = [torch.randint(5, 60, (n,), generator=g).tolist() for n in (6, 9, 12)]
    lm_inputs = [dict(input_ids=[2] + s) for s in ids]
    for f, kw in (('llama', {}), ('qwen2', dict(window=64)), ('qwen3', {})):
        m = tiny_causal_model(f, seed=1, **kw)
        add(f'{f}-tiny', m, 'lm', f, lm_inputs)
    ind = root/'examples/models/induction-2l'
    if ind.exists():
        seq = torch.randint(5, 60, (8,), generator=g).tolist()
        add('induction-2l', AutoModelForCausalLM.from_pretrained(ind, dtype=torch.float32), 'lm', 'llama',
            [dict(input_ids=[1] + seq + seq[:4])])
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--side_python', help='python of the side environment with lxt 2.1 and transformers 4.52')
    ap.add_argument('--side', help=argparse.SUPPRESS)
    ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args()
    if a.side: return side(a.side)
    if not a.side_python: sys.exit('--side_python is needed: a python with lxt 2.1 and transformers 4.52')
    import torch
    torch.set_num_threads(a.threads)
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    from attattr.lrp import lrp, LRP_EPSILON
    with tempfile.TemporaryDirectory() as d:
        cases, jobs = build(d), []
        for c in cases:
            auto = AutoModelForSequenceClassification if c['kind'] == 'cls' else AutoModelForCausalLM
            model = auto.from_pretrained(c['path'], dtype=torch.float32).eval()
            pred = lrp(model, c['inputs'], epsilon=0.).target
            for t in (pred, (pred + 1) % (model.config.num_labels if c['kind'] == 'cls' else model.config.vocab_size)):
                r0, re = lrp(model, c['inputs'], t, epsilon=0.), lrp(model, c['inputs'], t, epsilon=LRP_EPSILON)
                jobs.append(dict(c, target=t, ours0=r0.tokens.tolist(), ours=re.tokens.tolist(), logit=r0.logit,
                                 edges0=r0.edges.tolist()))
        job = Path(d)/'job.json'; job.write_text(json.dumps(dict(cases=jobs)))
        env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), PYTHONWARNINGS='ignore')
        res = subprocess.run([a.side_python, __file__, '--side', str(job)], capture_output=True, text=True, env=env)
        if res.returncode: sys.exit(f'side run failed:\n{res.stderr[-3000:]}')
        theirs = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"side: {theirs['versions']}")
    rows = {}
    for j, t in zip(jobs, theirs['cases']):
        b = torch.tensor(t['tokens'], dtype=torch.float64)
        d0 = float((torch.tensor(j['ours0'], dtype=torch.float64) - b).abs().max() / b.abs().max())
        de = float((torch.tensor(j['ours'], dtype=torch.float64) - b).abs().max() / b.abs().max())
        dl = abs(j['logit'] - t['logit']) / abs(t['logit'])
        eb = torch.tensor(t['edges'], dtype=torch.float64)
        dd = float((torch.tensor(j['edges0'], dtype=torch.float64) - eb).abs().max() / eb.abs().max())
        r = rows.setdefault(j['name'], dict(n=0, d0=0., de=0., dl=0., dd=0., sum_ratio=[]))
        r['n'] += 1; r['d0'] = max(r['d0'], d0); r['de'] = max(r['de'], de); r['dl'] = max(r['dl'], dl)
        r['dd'] = max(r['dd'], dd)
        r['sum_ratio'].append(float(b.sum()) / t['logit'])
    print(f"{'model':16} {'cases':>5} {'logit rel':>10} {'max rel ε=0':>12} {'max rel ε=1e-6':>15} {'edges ε=0':>10} {'Σ lxt / logit':>16}")
    for k, r in rows.items():
        sr = r['sum_ratio']
        print(f"{k:16} {r['n']:5d} {r['dl']:10.1e} {r['d0']:12.1e} {r['de']:15.1e} {r['dd']:10.1e} {min(sr):7.2f}–{max(sr):.2f}")


if __name__ == '__main__':
    main()
