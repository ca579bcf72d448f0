"""Execute notebooks in place so the committed notebooks (and the docs built from them) hold real outputs.

Usage: python tools/run_nbs.py [--skip-slow] nbs/07_attribution.ipynb [more.ipynb ...]
Runs every cell, flagged slow cells included (with --skip-slow they keep their stored outputs); cells flagged `#| gpu`
only where CUDA is available (elsewhere they keep their stored outputs); cells are run from the notebook's own folder.
"""
import os, sys
from pathlib import Path
from execnb.shell import CaptureShell
from fastcore.nbio import read_nb, write_nb

SKIP_SLOW = False  # --skip-slow: `#| slow` cells keep their stored outputs

def _flagged(cell, flag) -> bool: return any(l.strip().replace(' ', '') == f'#|{flag}' for l in cell.source.splitlines())

def _skip(cell) -> bool:
    "Skip `#| gpu` cells without a CUDA device, and `#| slow` cells with --skip-slow."
    import torch
    return (not torch.cuda.is_available() and _flagged(cell, 'gpu')) or (SKIP_SLOW and _flagged(cell, 'slow'))

def run(path):
    path = Path(path).resolve()
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        nb = read_nb(path)
        sh = CaptureShell()
        sh.run_all(nb, exc_stop=True, preproc=_skip)
        write_nb(nb, path)
    finally: os.chdir(cwd)
    print(f"executed {path.name}")

if __name__ == "__main__":
    SKIP_SLOW = '--skip-slow' in sys.argv
    for p in sys.argv[1:]:
        if p != '--skip-slow': run(p)
