"""Faithfulness of attattr and its peers on real checkpoints: token, edge and head removal tests with bootstrap intervals,
and the CPU cost of one explanation per method (one thread, same process, same inputs).

    OMP_NUM_THREADS=1 python bench/faithfulness.py --datasets sst-2,snli,induction --n 150,80,200 --out OUT
    OMP_NUM_THREADS=1 python bench/faithfulness.py --datasets induction --n 200 --auto --reference attattr_auto \
        --methods attattr,attattr_auto,attnlrp,grad_attention,rollout,flow,attention,random

`--auto` adds `attattr_auto`: attattr with `n_steps="auto"` (the points per example and layer until the completeness
residual and the scores' change are ≤ 1e-3), the fair setting on a decoder whose F(αA) steps sharply, where the
default 20 points leave residuals of up to 190 %; `--reference` names the method the paired columns compare with.

Prints, per dataset and level, two markdown tables: method × metric as mean [95% bootstrap interval over examples],
and paired: method − attattr on the same examples and resamples [95% paired interval] with the verdict (better /
equal / worse in the metric's direction). `--out` keeps each dataset's full result (per-example values) as JSON.
"""
import argparse, json, random, sys, time
from functools import partial
from pathlib import Path
import torch
from attattr import faithfulness as fa
from attattr.models import load_model
from attattr.data import featurize_task

ROOT = Path(__file__).resolve().parents[1]
LEVEL_METRICS = dict(tokens=['comprehensiveness', 'sufficiency', 'deletion_morf', 'deletion_lerf', 'insertion'],
                     edges=['edge_removal_drop', 'edge_keep'], heads=['head_prune'])

SST2_MODEL = ROOT.parent/'shared/models/minilm-l6-sst2'  # the SST-2 checkpoint: not shipped in the repository (45 MB);
# `--sst2_model DIR` names another one (a MiniLM fine-tuned with `attattr-finetune --task_name sst-2`, say)

def sst2(n, model=None):
    d = Path(model or SST2_MODEL)
    if not d.is_dir(): sys.exit(f"bench/faithfulness.py: no SST-2 checkpoint at {d}: pass --sst2_model DIR (e.g. one made by attattr-finetune --task_name sst-2)")
    m, tok = load_model(d)
    return m, tok, featurize_task('sst-2', ROOT/'examples/data/sst-2', tok, limit=n)

def snli(n):  # the NLI checkpoint on its own domain (SNLI sample dev, 300 pairs)
    m, tok = load_model(ROOT/'examples/models/minilm-l6-nli')
    return m, tok, featurize_task('snli', ROOT/'examples/data/snli-sample', tok, limit=n)

def nli(n):  # MNLI dev: 51 pairs here, out of the checkpoint's domain
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

DATASETS = {'sst-2': sst2, 'snli': snli, 'nli': nli, 'induction': induction}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--datasets', default='sst-2,snli,induction'); ap.add_argument('--n', default='150,80,200')
    ap.add_argument('--methods', default=','.join(fa.SCORERS)); ap.add_argument('--out', default=None)
    ap.add_argument('--tag', default='', help='suffix of the JSON file names (write --tag=-side)')
    ap.add_argument('--sst2_model', default=None, help=f'the SST-2 checkpoint folder (default {SST2_MODEL.name} beside the repository)')
    ap.add_argument('--auto', action='store_true', help="add the method attattr_auto: attattr with n_steps='auto'")
    ap.add_argument('--reference', default=fa.REFERENCE, help='the method the paired columns compare with')
    a = ap.parse_args()
    if a.auto: fa.SCORERS['attattr_auto'] = partial(fa.attattr_scorer, n_steps='auto')
    torch.set_num_threads(1)
    for name, n in zip(a.datasets.split(','), map(int, a.n.split(','))):
        m, tok, exs = DATASETS[name](n, a.sst2_model) if name == 'sst-2' else DATASETS[name](n)
        t0, c0 = time.time(), time.process_time()
        res = fa.run_benchmark(m, exs, a.methods.split(','), tokenizer=tok, reference=a.reference)
        print(f"\n### {name}: n = {res['n']} examples ({time.process_time() - c0:.0f} s CPU, {time.time() - t0:.0f} s wall)\n")
        for lv, ks in LEVEL_METRICS.items():
            print(f"{lv}:\n" + fa.format_table(res, ks) + '\n\n' + f"{lv}, paired (method − {a.reference}):\n" + fa.format_table(res, ks, paired=True) + '\n')
        if a.out: Path(a.out).mkdir(parents=True, exist_ok=True); (Path(a.out)/f'{name}{a.tag}.json').write_text(json.dumps(res))
        sys.stdout.flush()

if __name__ == '__main__': main()
