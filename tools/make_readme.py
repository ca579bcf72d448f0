"""Write README.md from nbs/index.ipynb (nbdev's own `nbdev-readme` needs Quarto, which is not installable here).

Markdown cells are copied, code cells become ```python blocks, text outputs become ``` blocks; cells with `#| hide`
are left out, and so are cells with `#| echo: false` (the docs show only their output, e.g. the landing page's
figure) and figures. Links that point into the docs site are made to work on GitHub: `NN_x.ipynb` → `nbs/NN_x.ipynb`,
an API page `api/<module>.md` → the module's source `attattr/<module>.py`. `--check` exits 1 when README.md is out of
date.
"""
import re, sys
from pathlib import Path
from fastcore.nbio import read_nb

ROOT = Path(__file__).resolve().parents[1]
DROP = ('#| hide', '#|hide', '#| echo: false', '#|echo: false')  # code cells with one of these lines stay out
_re_nb_link = re.compile(r'\]\((?!\w+:|/|#|nbs/)([^)\s]+\.ipynb)((?:#[^)]*)?)\)')  # ](20_x.ipynb) in the docs site
_re_api_link = re.compile(r'\]\(api/(\w+)\.md((?:#[^)]*)?)\)')  # ](api/attribution.md): a page of the API reference


def fix_links(md:str) -> str:
    "Docs-site links in markdown `md` made to work from the repository root (notebooks in nbs/, API → module source)."
    md = _re_nb_link.sub(lambda m: f'](nbs/{m.group(1)})', md)
    return _re_api_link.sub(lambda m: f'](attattr/{m.group(1)}.py)', md)


def render(nb_path=ROOT/'nbs'/'index.ipynb'):
    out = []
    for c in read_nb(nb_path).cells:
        src = c.source.rstrip()
        if c.cell_type == 'markdown': out.append(fix_links(src)); continue
        lines = src.splitlines()
        if any(l.strip() in DROP for l in lines): continue
        code = '\n'.join(l for l in lines if not l.startswith('#|')).strip()
        if code: out.append(f"```python\n{code}\n```")
        for o in c.get('outputs', []):
            txt = ''.join(o.get('text', '') or o.get('data', {}).get('text/plain', '')).rstrip()
            if txt and not ('image/png' in o.get('data', {}) or txt.startswith('<Figure')): out.append(f"```\n{txt}\n```")
    return '<!-- generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file -->\n\n' + '\n\n'.join(out) + '\n'

if __name__ == "__main__":
    txt, dest = render(), ROOT/'README.md'
    if '--check' in sys.argv:
        if not dest.exists() or dest.read_text() != txt: sys.exit("README.md is out of date: run `python tools/make_readme.py`")
    else: dest.write_text(txt)
