"""Faithfulness of attattr and its peers on real checkpoints: token, edge and head removal tests with bootstrap intervals,
and the CPU cost of one explanation per method (one thread, same process, same inputs).

    OMP_NUM_THREADS=1 python bench/faithfulness.py --datasets sst-2,nli,induction --n 32,16,16

Prints one markdown table per dataset and level (method × metric, mean [95% bootstrap interval over examples]).
"""
import argparse, json, random, sys, time
from pathlib import Path
import torch
from attattr import faithfulness as fa
from attattr.models import load_model
from attattr.data import featurize_task

ROOT = Path(__file__).resolve().parents[1]
LEVEL_METRICS = dict(tokens=['comprehensiveness', 'sufficiency', 'deletion_morf', 'deletion_lerf', 'insertion'],
                     edges=['edge_removal_drop', 'edge_keep'], heads=['head_prune'])

def sst2(n):
    m, tok = load_model(ROOT.parent/'shared/models/minilm-l6-sst2')
    return m, tok, featurize_task('sst-2', ROOT/'examples/data/sst-2', tok, limit=n)

def nli(n):
    m, tok = load_model(ROOT/'examples/models/minilm-l6-nli')
    return m, tok, featurize_task('mnli', ROOT/'examples/data/mnli', tok, limit=n)

def induction(n):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from attattr.hooks import hook_model
    d = ROOT/'examples/models/induction-2l'
    tok = AutoTokenizer.from_pretrained(d); m = hook_model(AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval())
    exs = []
    for seed in range(n):  # <bos> s s[:5], s 8 distinct tokens: the next token is s[5] (bench/decoders.py's prompt)
        rng = random.Random(seed); seq = [f't{i}' for i in rng.sample(range(64), 8)]
        exs.append({'input_ids': torch.tensor(tok.convert_tokens_to_ids(['<bos>'] + seq + seq[:5]))})
    return m, tok, exs

DATASETS = {'sst-2': sst2, 'nli': nli, 'induction': induction}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--datasets', default='sst-2,nli,induction'); ap.add_argument('--n', default='32,16,16')
    ap.add_argument('--methods', default=','.join(fa.SCORERS)); ap.add_argument('--out', default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    for name, n in zip(a.datasets.split(','), map(int, a.n.split(','))):
        m, tok, exs = DATASETS[name](n)
        t0 = time.time()
        res = fa.run_benchmark(m, exs, a.methods.split(','), tokenizer=tok)
        print(f"\n### {name}: n = {res['n']} examples ({time.time() - t0:.0f} s wall)\n")
        for lv, ks in LEVEL_METRICS.items(): print(f"{lv}:\n" + fa.format_table(res, ks) + '\n')
        if a.out: Path(a.out).mkdir(parents=True, exist_ok=True); (Path(a.out)/f'{name}.json').write_text(json.dumps(res))
        sys.stdout.flush()

if __name__ == '__main__': main()
