"""Small helpers to restructure notebooks from a script: load/save in nbdev's layout, move cells, re-route imports.

Used for refactors that move exported names between modules, e.g.
`python -c "from tools.nbedit import *; reroute('attattr.data', {'AttattrError': 'attattr.core'})"`.
"""
from __future__ import annotations
import json, re, uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT/'nbs'

def load(name): return json.loads((NBS/name).read_text(encoding='utf-8'))

def save(nb, name):
    (NBS/name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')

def src(cell) -> str: return ''.join(cell['source'])

def set_src(cell, text:str):
    cell['source'] = text.splitlines(keepends=True)
    return cell

def new_cell(kind:str, text:str) -> dict:
    c = dict(cell_type=kind, id=uuid.uuid4().hex[:8], metadata={}, source=[])
    if kind == 'code': c.update(execution_count=None, outputs=[])
    return set_src(c, text)

def new_nb(cells:list, like:str='02_data.ipynb') -> dict:
    nb = load(like)
    nb['cells'] = cells
    return nb

_IMPORT = re.compile(r'^(?P<ind>[ \t]*)from (?P<mod>[\w.]+) import (?P<names>\([^)]*\)|[^\n]*)', re.M)

def _names(s:str) -> list[str]:
    s = re.sub(r'#[^\n]*', '', s).strip()
    if s.startswith('('): s = s[1:-1]
    return [n.strip() for n in s.replace('\n', ' ').split(',') if n.strip()]

def _fmt(ind, mod, names, width=118):
    line = f"{ind}from {mod} import {', '.join(names)}"
    if len(line) <= width: return line
    out, cur = [], f"{ind}from {mod} import ("
    for i, n in enumerate(names):
        piece = n + (', ' if i < len(names) - 1 else ')')
        if len(cur) + len(piece.rstrip()) > width:
            out.append(cur.rstrip()); cur = ind + ' ' * (len(f"from {mod} import (")) + piece
        else: cur += piece
    out.append(cur.rstrip())
    return '\n'.join(out)

def reroute_text(text:str, mod:str, moved:dict) -> str:
    "Rewrite `from mod import ...` (absolute or `.rel`) so that names in `moved` come from their new modules."
    rel = '.' + mod.split('.')[-1]
    def fix(m):
        if m['mod'] not in (mod, rel) or m['names'].strip() == '*': return m.group(0)
        names = _names(m['names'])
        groups = {}
        for n in names:
            target = moved.get(n.split(' as ')[0], mod)
            if m['mod'] == rel and target != mod: target = '.' + target.split('.')[-1]
            elif m['mod'] == rel: target = rel
            groups.setdefault(target, []).append(n)
        order = sorted(groups, key=lambda t: (t.lstrip('.') != mod.split('.')[-1] and t != mod, 0))
        return '\n'.join(_fmt(m['ind'], t, groups[t]) for t in groups)
    return _IMPORT.sub(fix, text)

def reroute(mod:str, moved:dict, files=None):
    "Re-route imports of `moved` names from `mod` in every notebook (and the given .py files)."
    for p in sorted(NBS.glob('*.ipynb')):
        nb = load(p.name); changed = False
        for c in nb['cells']:
            if c['cell_type'] != 'code': continue
            t = src(c); t2 = reroute_text(t, mod, moved)
            if t2 != t: set_src(c, t2); changed = True
        if changed: save(nb, p.name); print('rerouted', p.name)
    for f in files or []:
        f = Path(f); t = f.read_text(); t2 = reroute_text(t, mod, moved)
        if t2 != t: f.write_text(t2); print('rerouted', f)
