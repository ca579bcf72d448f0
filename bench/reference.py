"""A straightforward re-implementation of the original `generate_attrscore.py` algorithm, kept as the reference.

No attattr machinery: its own attention function, inputs padded to `max_seq_length` (128), the whole model recomputed for
every batch of `batch_size` points (embeddings and every layer at batch `batch_size`), α_k = k/m for k = 0..m−1 (left
Riemann sum, m = batch_size × num_batch), zero baseline, gradient of the predicted class's probability.

    python bench/reference.py --model examples/models/minilm-l6-nli --data_dir examples/data/mnli --example_index 4 --output_dir /tmp/ref
"""
import argparse, json, os, sys, time
import torch
from torch import nn
from transformers import AttentionInterface, AttentionMaskInterface, AutoModelForSequenceClassification, AutoTokenizer
from transformers.masking_utils import eager_mask

IMPL = "attattr_reference"

def _attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kw):
    "Eager attention; the layer `ref['layer']` uses `ref['probs']` instead of its own probabilities, `ref['seen']` records."
    ref = kw['ref']
    scores = torch.matmul(query, key.transpose(2, 3)) * (scaling or query.size(-1) ** -0.5)
    if attention_mask is not None: scores = scores + attention_mask
    p = scores.softmax(-1)
    ref['seen'].append(p.detach())
    if len(ref['seen']) - 1 == ref.get('layer'): p = ref['probs']
    return torch.matmul(p, value).transpose(1, 2).contiguous(), p

AttentionInterface.register(IMPL, _attention)
AttentionMaskInterface.register(IMPL, eager_mask)

def wrap(model):
    "A copy of a loaded classifier running the reference attention."
    import copy
    model = copy.deepcopy(model).eval()
    model.set_attn_implementation(IMPL)
    return model

def load(path):
    return wrap(AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32)), AutoTokenizer.from_pretrained(path)

def encode(tok, text_a, text_b=None, max_seq_length=128):
    "Original featurisation: truncate the longer side first, then zero-pad to max_seq_length."
    enc = tok(text_a, text_b, truncation='longest_first', max_length=max_seq_length, padding='max_length', return_tensors='pt')
    return {k: enc[k] for k in ('input_ids', 'attention_mask', 'token_type_ids') if k in enc}

def reference_attribution(model, inputs, batch_size=16, num_batch=4):
    "Attribution (L, H, n, n) the original way: per layer, per batch of points, a full forward at batch `batch_size`."
    n = int(inputs['attention_mask'].sum())
    L = model.config.num_hidden_layers
    m = batch_size * num_batch
    big = {k: v.expand(batch_size, -1) for k, v in inputs.items()}
    out = []
    for l in range(L):
        ref = dict(seen=[])
        with torch.no_grad(): logits = model(**inputs, ref=ref).logits
        c = int(logits.argmax(-1))
        A = ref['seen'][l][0]  # (H, P, P)
        step = A / m
        G = torch.zeros_like(A)
        for b in range(num_batch):
            k = torch.arange(b * batch_size, (b + 1) * batch_size, dtype=A.dtype).view(-1, 1, 1, 1)
            pts = (k * step).requires_grad_(True)  # (batch_size, H, P, P)
            ref = dict(seen=[], layer=l, probs=pts)
            prob = model(**big, ref=ref).logits.softmax(-1)[:, c]
            g, = torch.autograd.grad(prob.sum(), pts)
            G += g.sum(0)
        out.append((G * step)[:, :n, :n])
    return torch.stack(out)  # (L, H, n, n)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--model', required=True); ap.add_argument('--data_dir', required=True)
    ap.add_argument('--example_index', type=int, default=5); ap.add_argument('--batch_size', type=int, default=16)
    ap.add_argument('--num_batch', type=int, default=4); ap.add_argument('--output_dir', required=True)
    a = ap.parse_args(argv)
    import csv
    rows = list(csv.reader(open(os.path.join(a.data_dir, 'dev_matched.tsv')), delimiter='\t', quotechar=None))[1:]
    row = rows[a.example_index]
    model, tok = load(a.model)
    attr = reference_attribution(model, encode(tok, row[8], row[9]), a.batch_size, a.num_batch)
    os.makedirs(a.output_dir, exist_ok=True)
    with open(os.path.join(a.output_dir, f'attr_zero_base_exp{a.example_index}.json'), 'w') as f:
        for layer in attr: f.write(json.dumps(layer.tolist()) + '\n')

if __name__ == '__main__': main()
