"""Write README.md from nbs/index.ipynb (nbdev's own `nbdev-readme` needs Quarto, which is not installable here).

Markdown cells are copied, code cells become ```python blocks, text outputs become ``` blocks;
cells with `#| hide` are left out. `--check` exits 1 when README.md is out of date.
"""
import sys
from pathlib import Path
from fastcore.nbio import read_nb

ROOT = Path(__file__).resolve().parents[1]

def render(nb_path=ROOT/'nbs'/'index.ipynb'):
    out = []
    for c in read_nb(nb_path).cells:
        src = c.source.rstrip()
        if c.cell_type == 'markdown': out.append(src); continue
        lines = src.splitlines()
        if any(l.strip() in ('#| hide', '#|hide') for l in lines): continue
        code = '\n'.join(l for l in lines if not l.startswith('#|')).strip()
        if code: out.append(f"```python\n{code}\n```")
        for o in c.get('outputs', []):
            txt = ''.join(o.get('text', '') or o.get('data', {}).get('text/plain', '')).rstrip()
            if txt: out.append(f"```\n{txt}\n```")
    return '<!-- generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file -->\n\n' + '\n\n'.join(out) + '\n'

if __name__ == "__main__":
    txt, dest = render(), ROOT/'README.md'
    if '--check' in sys.argv:
        if not dest.exists() or dest.read_text() != txt: sys.exit("README.md is out of date: run `python tools/make_readme.py`")
    else: dest.write_text(txt)
