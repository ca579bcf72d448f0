#!/usr/bin/env python
"""Which SST-2 training sentences has the shipped checkpoint seen? Accuracy and loss on slices before and after row 24,000.

`minilm-l6-sst2/TRAINING.json` records 24,000 training sentences, 1 epoch; `attattr.finetune` takes the first `limit`
rows. If those are the rows it saw, its loss on rows 0–24,000 is lower than on the rows after them.

    OMP_NUM_THREADS=1 python examples/pruning/sst2_unseen_check.py [--shared ../shared]
"""
import argparse, json, sys, time
from pathlib import Path
import numpy as np, torch

ROOT = Path(__file__).resolve().parents[2]
from attattr.core import write_json_atomic
from attattr.data import featurize, read_examples
from attattr.inference import evaluate_features
from attattr.models import load_model

SLICES = ((0, 600), (23400, 24000), (24000, 24600), (59000, 59600))  # two slices inside the first 24,000 rows, two after

def main(shared, out):
    torch.set_num_threads(1)
    model, tok = load_model(Path(shared)/'models/minilm-l6-sst2', num_labels=2)
    train, t = read_examples('sst-2', Path(shared)/'data/sst-2', 'train'), time.process_time()
    rows = []
    for a, b in SLICES:
        f = featurize(train[a:b], tok, ['0', '1'])
        r = evaluate_features(model, f, batch_size=64)
        rows.append(dict(rows=[a, b], acc=float(np.mean(np.array(r['pred']) == np.array([x.label for x in f]))), loss=float(r['loss'])))
        print(rows[-1])
    write_json_atomic(dict(slices=rows, cpu_s=round(time.process_time() - t, 1)), out, indent=1)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--shared', default=str(ROOT.parent/'shared'))
    ap.add_argument('--out', default=str(ROOT/'examples/pruning/sst2_unseen_check.json'))
    a = ap.parse_args()
    main(a.shared, a.out)
