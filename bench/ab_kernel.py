"""A/B of the attribution kernel: this checkout's `attattr` against the package of another git commit, in one process.

The other commit's `attattr/` is read from git into a temporary folder and imported as `attattr_base` (its attention
function registered under its own name), both load the MiniLM NLI checkpoint, and `attribute` of each is timed
alternately on the same MNLI dev_matched examples, so a busy machine slows both alike. Prints, per example, the median
over the pairs of each side's CPU time, their ratio (base / this checkout: > 1 means this checkout is faster) and the
largest relative difference of the attributions.

    python bench/ab_kernel.py --base 7b231da --pairs 9 --threads 1 [--this COMMIT]
    python bench/ab_kernel.py --base 7c5dc6a --auto [--induction]   # n_steps="auto"; the trained decoder's prompts
"""
import argparse, importlib, statistics, subprocess, sys, tempfile, time
from pathlib import Path
import torch

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT/'examples'/'models'/'minilm-l6-nli'
DATA = ROOT/'examples'/'data'/'mnli'
EXAMPLES = (0, 2)  # MNLI dev_matched indices of bench/attribution.py's section (i): n = 15 and n = 50 tokens
INDUCTION = ROOT/'examples'/'models'/'induction-2l'
PROMPTS = ((16, 12, 2), (24, 20, 1))  # --induction: bench/decoders.py's `induction_prompt` (first, repeat, seed): 29, 45 tokens


def load_commit(commit:str, name:str='attattr_base'):
    "The package `attattr/` of git `commit`, imported as `name` (its attention function registered under that name)."
    d = Path(tempfile.mkdtemp())/name
    d.mkdir()
    git = lambda *a: subprocess.run(['git', '-C', str(ROOT), *a], capture_output=True, check=True).stdout
    for f in git('ls-tree', '-r', '--name-only', commit, 'attattr/').decode().split():
        src = git('show', f'{commit}:{f}').decode()
        (d/Path(f).name).write_text(src.replace('ATTN_IMPL = "attattr"', f'ATTN_IMPL = "{name}"'))
    sys.path.insert(0, str(d.parent))
    return importlib.import_module(name)


def cpu_time(f):
    "CPU seconds of `f()` and its result."
    t = time.process_time(); r = f(); return time.process_time() - t, r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--base', required=True, help='git commit to compare against')
    ap.add_argument('--this', default=None, help="git commit to time instead of this checkout's working tree")
    ap.add_argument('--pairs', type=int, default=9, help='timed pairs per example (each after an untimed pair)')
    ap.add_argument('--threads', type=int, default=1, help='torch threads')
    ap.add_argument('--auto', action='store_true', help="n_steps='auto' (default: the original's 64 left-Riemann points)")
    ap.add_argument('--induction', action='store_true', help="examples/models/induction-2l on two prompts instead of MiniLM NLI")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.this: load_commit(a.this, 'attattr_this')
    pkg = 'attattr_this' if a.this else 'attattr'
    new_attr, new_models, new_data = (importlib.import_module(f'{pkg}.{m}') for m in ('attribution', 'models', 'data'))
    load_commit(a.base)
    base_attr, base_models = importlib.import_module('attattr_base.attribution'), importlib.import_module('attattr_base.models')
    new_model, tok = new_models.load_model(INDUCTION if a.induction else MODEL)
    base_model, _ = base_models.load_model(INDUCTION if a.induction else MODEL)
    if a.induction:
        sys.path.insert(0, str(ROOT/'bench'))
        from decoders import induction_prompt
        feats = [dict(input_ids=induction_prompt(tok, *p)) for p in PROMPTS]
        examples = range(len(feats))
    else:
        labels = [new_model.config.id2label[i] for i in range(new_model.config.num_labels)]
        feats, examples = new_data.featurize(new_data.read_examples('mnli', DATA), tok, labels), EXAMPLES
    settings = dict(n_steps='auto') if a.auto else dict(n_steps=64, method='riemann_left')  # auto, or the original's (FAITHFUL)
    print(f"{'git ' + a.this if a.this else 'this checkout'} vs git {a.base}, {a.threads} thread(s), {a.pairs} pairs, {settings}")
    print(f"{'example':>7} {'n':>4} {'base s':>8} {'this s':>8} {'ratio':>6} {'max rel diff':>13}")
    for i in examples:
        f = feats[i]
        runs = dict(base=lambda: base_attr.attribute(base_model, f, **settings), this=lambda: new_attr.attribute(new_model, f, **settings))
        times, res = dict(base=[], this=[]), {}
        for k in range(a.pairs + 1):  # pair 0 is untimed; the order alternates
            for side in ('base', 'this') if k % 2 else ('this', 'base'):
                t, res[side] = cpu_time(runs[side])
                if k: times[side].append(t)
        diff = ((res['this'].attributions - res['base'].attributions).abs().max() / res['base'].attributions.abs().max()).item()
        tb, tt = statistics.median(times['base']), statistics.median(times['this'])
        print(f"{i:>7} {len(f['input_ids'] if a.induction else f.input_ids):>4} {tb:>8.3f} {tt:>8.3f} {tb / tt:>6.2f} {diff:>13.1e}")


if __name__ == '__main__': main()
