"""Where one `attribute` call spends its time: a torch.profiler table (CPU and, on a GPU, CUDA time per op).

    python bench/profile_kernel.py --device cuda --bf16 --n 43        # random bert-base, one MNLI-length input
    python bench/profile_kernel.py --minilm --n 15 --threads 1         # the MiniLM NLI checkpoint on the CPU
"""
import argparse, sys, time
from pathlib import Path
import torch
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parents[1]
from attattr.attribution import attribute
from attattr.models import load_model

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--device', default='cpu'); ap.add_argument('--bf16', action='store_true')
    ap.add_argument('--minilm', action='store_true', help='the MiniLM checkpoint instead of a random bert-base')
    ap.add_argument('--n', type=int, default=43, help='tokens'); ap.add_argument('--b', type=int, default=1, help='examples')
    ap.add_argument('--n_steps', type=int, default=20); ap.add_argument('--method', default='riemann_left')
    ap.add_argument('--threads', type=int, default=None); ap.add_argument('--rows', type=int, default=30)
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    if a.minilm: model = load_model(ROOT/'examples'/'models'/'minilm-l6-nli', device=a.device)[0]
    else:
        from transformers import BertConfig, BertForSequenceClassification
        from attattr.hooks import hook_model
        torch.manual_seed(0)
        model = hook_model(BertForSequenceClassification(BertConfig(num_labels=3)).to(a.device))
    xs = [dict(input_ids=torch.randint(1000, 20000, (a.n,))) for _ in range(a.b)]
    kw = dict(n_steps=a.n_steps, method=a.method, autocast_dtype=torch.bfloat16 if a.bf16 else None)
    sync = torch.cuda.synchronize if a.device.startswith('cuda') else (lambda: None)
    for _ in range(3): attribute(model, xs, **kw)
    sync(); t = time.perf_counter()
    for _ in range(5): attribute(model, xs, **kw)
    sync(); print(f"{(time.perf_counter() - t) / 5 * 1e3:.1f} ms per call ({a.b} examples of {a.n} tokens)")
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if a.device.startswith('cuda') else [])
    with profile(activities=acts) as prof:
        attribute(model, xs, **kw); sync()
    key = 'cuda_time_total' if a.device.startswith('cuda') else 'self_cpu_time_total'
    print(prof.key_averages().table(sort_by=key, row_limit=a.rows, max_name_column_width=60))

if __name__ == '__main__': main()
