"""Execute notebooks in place so the committed notebooks (and the docs built from them) hold real outputs.

Usage: python tools/run_nbs.py nbs/07_attribution.ipynb [more.ipynb ...]
Runs every cell, flagged slow cells included; cells flagged `#| gpu` only where CUDA is available (elsewhere they keep
their stored outputs); cells are run from the notebook's own folder.
"""
import os, sys
from pathlib import Path
from execnb.shell import CaptureShell
from fastcore.nbio import read_nb, write_nb

def _skip(cell) -> bool:
    "Skip `#| gpu` cells without a CUDA device."
    import torch
    return not torch.cuda.is_available() and any(l.strip().replace(' ', '') == '#|gpu' for l in cell.source.splitlines())

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
    for p in sys.argv[1:]: run(p)
