"""Build the documentation site from the notebooks with Jupyter Book 1.x (Sphinx + MyST-NB), offline.

Usage: python tools/build_docs.py [--out _build/html] [--stage DIR] [--report FILE] [--jobs N] [--verbose]
(`make docs`). Open `_build/html/index.html`, or serve it: `python -m http.server -d _build/html`.

Every `nbs/*.ipynb` (names starting with `_` or `.` excepted, as in nbdev) becomes a page; there is no list to keep.
1. The notebooks are copied into a staging folder and cleaned with nbdev's own processors (`NBProcessor`): cells
   flagged `#| hide` go, directive lines (`#| export`, `#| default_exp`, ...) are stripped, Quarto cell options
   (`#| echo: false`, `#| output: false`, `#| include: false`, `#| code-fold`) become MyST-NB cell tags, and the
   stored outputs (figures included) are kept. Nothing is executed (`execute_notebooks: off`); `ATTATTR_STATIC=1`
   is set all the same. Before each exported cell goes nbdev's `show_doc` entry of what it defines (signature with
   the docments comments, docstring: rendered from the imported module, the notebook is not run); the exported
   source itself is folded under a toggle (`FOLD_EXPORTS`).
2. `_toc.yml` is written: `index` first, then the module notebooks (those with `#| default_exp`) in file order, then
   the other notebooks (the tutorial, the reproduction, ...), then the API reference: a page per `attattr` module
   (Sphinx autodoc of its `__all__`, parameters from the docments comments, constants with their comments).
3. `_config.yml` is written and the book is built with Jupyter Book's Sphinx entry point into `--out`.
Warnings that mean broken content (missing images or files, broken toc or links, notebooks or outputs that cannot
be rendered, modules that fail to import) fail the build (exit status 1); the known harmless ones are filtered by the
explicit list `HARMLESS` (and reported); any other warning is printed. `--stage DIR` keeps the book source, which
`jupyter-book build DIR` also builds. This file is also the Sphinx extension (`setup`) that adds the docments
parameter lists to the API pages.
"""
from __future__ import annotations
import argparse, contextlib, io, json, os, re, shutil, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'  # the notebooks: the source of truth
LIB = ROOT/'attattr'  # the exported package
DEFAULT_OUT = ROOT/'_build'/'html'  # where the site goes unless --out says otherwise
PKG = 'attattr'
TITLE = 'attattr'
AUTHOR = 'attattr developers'
REPO_URL = 'https://github.com/attattr/attattr'
MODULES_CAPTION = 'Modules'  # toc part of the notebooks that export a module
GUIDES_CAPTION = 'Tutorials and reproduction'  # toc part of the other notebooks
API_CAPTION = 'API reference'
API_DIR = 'api'  # staging sub-folder (and URL prefix) of the API reference pages
ASSETS_DIR = '_assets'  # staging sub-folder for local files that markdown cells show (`![](../x.png)`)

FOLD_EXPORTS = True  # exported cells: their source folded under a toggle, their show_doc entry shown (as nbdev's docs)
# Quarto cell options (nbdev's docs dialect) → MyST-NB cell tags
QUARTO_TAGS = {('include', 'false'): 'remove-cell', ('echo', 'false'): 'remove-input',
               ('output', 'false'): 'remove-output', ('code-fold', 'true'): 'hide-input',
               ('code-fold', 'show'): 'hide-input'}

# Sphinx/MyST warnings that mean the site is broken: the build fails on these
BROKEN = [
    (r'image file not readable|image file .*not found|could not (find|read) image|Could not obtain image size',
     'missing image'),
    (r'toctree contains reference to (nonexisting|excluded|non-existing) document|\[etoc\.|'
     r"document isn't included in any toctree|doesn't have a title", 'broken toc'),
    (r'\[myst\.xref_missing\]|\[ref\.(doc|ref|myst)\]|unknown document|undefined label|'
     r'local id not found|Unknown source document|download file not readable|No such file', 'broken link or missing file'),
    (r'Notebook JSON is invalid|NotJSONError|[Ee]rror (reading|parsing|loading) notebook|'
     r'\[myst-?nb\.(mime_type|output_type|mime_priority|fig_caption)\]|No mime type available in priority list|'
     r'Unsupported output type', 'notebook not read or output not rendered'),
    (r'failed to import|\[autodoc\.import_object\]|autodoc: failed|No module named', 'API reference: import failed'),
]
# Harmless warnings, filtered explicitly (listed in the build report, never fatal)
HARMLESS = [
    (r'\[myst\.header\]|Non-consecutive header level|Document headings start at', 'heading levels'),
    (r'\[misc\.highlighting_failure\]|Lexing literal_block|Could not lex literal_block', 'code not highlighted'),
    (r'duplicate object description', 'an object documented twice'),
    (r'more than one target found for cross-reference', 'ambiguous cross-reference'),
    (r'Inline (emphasis|strong|literal|interpreted text).*start-string without end-string|'
     r'Unknown target name|Duplicate (implicit|explicit) target name', 'docstring markup'),
    (r'\[myst\.strikethrough\]', 'strikethrough (html only)'),
]
_ANSI = re.compile(r'\x1b\[[0-9;]*m')
_WARN_LINE = re.compile(r'^(?P<loc>.*?)(?P<level>WARNING|ERROR|CRITICAL|SEVERE): (?P<msg>.*)$')

CSS = """/* attattr: notebook pages generated by tools/build_docs.py */
/* sphinx-book-theme 1.3 + pydata-sphinx-theme 0.17 show pydata's own header bar as well: the article header has it all */
#pst-header { display: none; }
/* the `> description` line under a notebook's title reads as a lead paragraph, not as a quotation */
main h1 + blockquote, section > h1 + blockquote { border-left: none; padding: 0; margin: 0 0 1.5rem 0;
  font-size: 1.15rem; color: var(--pst-color-text-muted); background: none; }
/* long outputs scroll instead of stretching the page */
div.cell_output .output.stream pre, div.cell_output .output.text_plain pre { max-height: 32rem; overflow: auto; }
div.cell_output img { max-width: 100%; height: auto; }
/* show_doc entries on the notebook pages: the signature wraps (its docments comments stay readable) */
div.showdoc pre { white-space: pre-wrap; overflow-wrap: anywhere; }
div.showdoc div.highlight { margin-bottom: .5rem; }
/* API reference: a little air between members */
dl.py { margin-bottom: 1.5rem; }
"""


# ---------------------------------------------------------------- which notebooks, in which order
def doc_notebooks(nbs=NBS) -> list[Path]:
    "The notebooks the site is built from: every `nbs/*.ipynb` but names starting with `_` or `.` (as nbdev)."
    return sorted(p for p in Path(nbs).glob('*.ipynb') if not p.name.startswith(('_', '.')))


_re_default_exp = re.compile(r'^\s*#\|\s*default_exp\s+(\S+)', flags=re.MULTILINE)


def default_exp(path) -> str | None:
    "The module a notebook exports to (its `#| default_exp`), or None for tutorials and other pages."
    cells = json.loads(Path(path).read_text(encoding='utf-8')).get('cells', [])
    for c in cells:
        if c.get('cell_type') != 'code': continue
        m = _re_default_exp.search(''.join(c.get('source', '')))
        if m: return m.group(1)
    return None


def _order_key(p: Path):
    m = re.match(r'^(\d+)[_-]', p.name)
    return (int(m.group(1)) if m else float('inf'), p.name)


def toc_parts(nbs=NBS) -> tuple[Path | None, list[Path], list[Path]]:
    "(index notebook, module notebooks in order, other notebooks in order)."
    nbs_ = [p for p in doc_notebooks(nbs)]
    index = next((p for p in nbs_ if p.stem == 'index'), None)
    rest = sorted((p for p in nbs_ if p is not index), key=_order_key)
    mods = [p for p in rest if default_exp(p)]
    return index, mods, [p for p in rest if p not in mods]


def api_modules(lib=LIB) -> list[str]:
    "Dotted names of the package's public modules, in the order of the notebooks they come from."
    def key(p):
        m = re.search(r'File to edit: \.\./nbs/(\S+?)\.ipynb', p.read_text(encoding='utf-8')[:2000])
        return _order_key(Path(m.group(1) + '.ipynb')) if m else (float('inf'), p.name)
    mods = sorted((p for p in Path(lib).glob('*.py') if not p.name.startswith('_')), key=key)
    return [f'{PKG}.{p.stem}' for p in mods]


# ---------------------------------------------------------------- notebook → staged notebook (nbdev processors)
def _quarto_tags(cell):
    "Quarto cell options (`#| echo: false`, ...) → MyST-NB tags (`remove-input`, ...)."
    if cell.cell_type != 'code' or not cell.get('directives_'): return
    tags = [t for (k, v), t in QUARTO_TAGS.items() if str(cell.directives_.get(k, '')).lower() == v]
    if tags:
        md = cell.setdefault('metadata', {})
        md['tags'] = list(dict.fromkeys(list(md.get('tags', [])) + tags))


def _resolve(dotted: str):
    "The object named `pkg.module.Name` (or `...Class.method`), or None."
    import importlib
    parts = dotted.split('.')
    for i in range(len(parts) - 1, 0, -1):
        try: o = importlib.import_module('.'.join(parts[:i]))
        except Exception: continue
        try:
            for a in parts[i:]: o = getattr(o, a)
            return o
        except AttributeError: return None
    return None


_re_source_link = re.compile(r'^\[source\]\(.*$\n?', re.M)


def show_doc_md(dotted: str, level: int = 3) -> str | None:
    "nbdev's `show_doc` Markdown for the object named `dotted` (signature with docments comments, docstring), or None."
    import inspect
    from nbdev.showdoc import show_doc
    o = _resolve(dotted)
    if o is None or not (callable(o) or isinstance(o, property)): return None
    try: md = show_doc(o, name=dotted.split('.', 2)[-1], title_level=level)._repr_markdown_()
    except Exception: return None
    md = _re_source_link.sub('', md)  # its line anchor is unknown (#LNone) and the API page links the entry anyway
    md = re.sub(r'^\s*---\s*\n', '', md)  # the rule above the entry: docutils refuses one opening a section
    if inspect.isclass(o):
        name = re.escape(dotted.rsplit('.', 1)[-1])
        md = re.sub(rf'^def {name}\(', f'class {dotted.rsplit(".", 1)[-1]}(', md, flags=re.M)
        md = re.sub(r'^\)->None:$', '):', md, flags=re.M)
    head, _, body = md.strip().partition('\n')  # `### name`, then the signature and the docstring
    return f'{head}\n\n::::{{container}} showdoc\n{body.strip()}\n::::' if head.startswith('#') else md.strip()


class doc_exports:
    """nbdev's `show_doc` without running the notebook: before each exported cell, its public names' `show_doc` entries
    (signature with the docments comments, docstring); the exported source itself is folded under a toggle."""
    def __init__(self, nb): self.nb = nb
    def __call__(self, cell): pass
    def begin(self):
        from fastcore.nbio import mk_cell
        from nbdev.processors import _def_names
        # the directive lines are gone by now (NBProcessor strips them first); their parsed form is in `directives_`
        mod = next((c.directives_['default_exp'] for c in self.nb.cells if 'default_exp' in (c.get('directives_') or {})),
                   None)
        cells, level = [], 1  # level: of the heading the cell is under (its entries go one below)
        for c in self.nb.cells:
            if c.cell_type == 'markdown':
                hs = re.findall(r'^(#{1,6})\s', re.sub(r'```.*?```', '', c.source, flags=re.S), re.M)
                if hs: level = len(hs[-1])
            d = c.get('directives_') or {}
            exp = c.cell_type == 'code' and {'export', 'exports', 'exporti'} & set(d) and 'hide' not in d
            if exp and FOLD_EXPORTS: c.setdefault('metadata', {}).setdefault('tags', []).append('hide-input')
            target = next((d[k] for k in ('export', 'exports') if d.get(k)), None) or mod
            if exp and target and 'exporti' not in d:
                docs = [md for nm in _def_names(c, set()) if (md := show_doc_md(f'{PKG}.{target}.{nm}', min(level + 1, 6)))]
                if docs: cells.append(mk_cell('\n\n'.join(docs), 'markdown'))
            cells.append(c)
        self.nb.cells = cells


def _drop_empty(cell):
    "Drop code cells left empty (e.g. the `#| default_exp` cell) that have no outputs."
    if cell.cell_type == 'code' and not cell.source.strip() and not cell.get('outputs'): del cell['source']


def _title_from_frontmatter(nb):
    "A notebook whose title is in a raw `---` front-matter cell gets a `# title` cell (MyST pages need an H1)."
    from fastcore.nbio import cell_frontmatter, mk_cell
    fm, keep = {}, []
    for c in nb.cells:
        d = cell_frontmatter(c.source) if c.cell_type == 'raw' and c.get('source') else {}
        if d: fm.update(d)
        else: keep.append(c)
    nb.cells = keep
    has_h1 = any(c.cell_type == 'markdown' and re.search(r'^#\s+\S', c.source, re.M) for c in nb.cells)
    if fm.get('title') and not has_h1:
        md = f"# {fm['title']}" + (f"\n\n> {fm['description']}" if fm.get('description') else '')
        nb.cells.insert(0, mk_cell(md, 'markdown'))


_re_md_img = re.compile(r'(!\[[^\]]*\]\()([^)\s]+)((?:\s+"[^"]*")?\))|(<img\b[^>]*?\bsrc=["\'])([^"\']+)(["\'])')


def _stage_md_assets(nb, src_dir: Path, stage: Path):
    "Copy local files shown by markdown cells into the staging folder and point the cells at the copies."
    def local(ref):
        return not re.match(r'^([a-z][a-z0-9+.-]*:|//|#)', ref, re.I)

    def fix(m):
        pre, ref, post = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(4), m.group(5), m.group(6))
        if not local(ref): return m.group(0)
        src = (src_dir/ref).resolve()
        if not src.is_file(): return m.group(0)  # left as is: Sphinx reports the missing image
        try: rel = src.relative_to(ROOT)
        except ValueError: rel = Path(src.name)
        dest = stage/ASSETS_DIR/rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
        return pre + f'{ASSETS_DIR}/{rel.as_posix()}' + post

    for c in nb.cells:
        if c.cell_type == 'markdown' and c.get('source'): c.source = _re_md_img.sub(fix, c.source)


WIDGET_MIME = 'application/vnd.jupyter.widget-view+json'
STATIC_MIMES = {'image/png', 'image/svg+xml', 'image/jpeg', 'image/gif', 'text/html'}


def stage_notebook(src: Path, dest: Path, stage: Path) -> list[str]:
    """Clean notebook `src` for the docs with nbdev's processors and write it to `dest`; outputs are kept.
    Returns warnings about outputs that will not show on a static page (live widgets without a static fallback)."""
    from fastcore.nbio import read_nb, write_nb
    from nbdev.process import NBProcessor
    from nbdev.processors import (populate_language, strip_ansi, hide_line, filter_stream_, rm_header_dash,
                                  clean_magics, hide_, strip_hidden_metadata)
    nb = read_nb(src)
    procs = [populate_language, strip_ansi, hide_line, filter_stream_, rm_header_dash, clean_magics, hide_,
             strip_hidden_metadata, _quarto_tags, doc_exports, _drop_empty]
    with contextlib.chdir(ROOT):  # nbdev's processors read the project's config from the working folder
        NBProcessor(nb=nb, procs=procs, rm_directives=True).process()
    _title_from_frontmatter(nb)
    _stage_md_assets(nb, src.parent, stage)
    for c in nb.cells: c.get('metadata', {}).pop('language', None)  # populate_language's note, not nbformat
    nb.metadata.setdefault('kernelspec', dict(display_name='Python 3', language='python', name='python3'))
    nb.metadata.setdefault('language_info', dict(name='python', pygments_lexer='ipython3'))  # code highlighting
    write_nb(nb, dest)
    return [f'{src}: cell {i}: WARNING: a live widget output without a static figure: it shows only where the '
            f'widget JavaScript loads; store outputs run without a frontend (tools/run_nbs.py) [attattr.widget]'
            for i, c in enumerate(nb.cells) if c.cell_type == 'code' for o in c.get('outputs', [])
            if WIDGET_MIME in o.get('data', {}) and not STATIC_MIMES & set(o.get('data', {}))]


# ---------------------------------------------------------------- API reference pages, _toc.yml, _config.yml
def nb_title(path) -> str:
    "A notebook's title: its first markdown `# heading` (else its file name)."
    for c in json.loads(Path(path).read_text(encoding='utf-8')).get('cells', []):
        m = re.search(r'^#\s+(\S.*?)\s*$', ''.join(c.get('source', '')), re.M) if c.get('cell_type') == 'markdown' else None
        if m: return m.group(1)
    return Path(path).stem


def _api_members(mod: str):
    "[(kind, name, obj, comment)] of a module's public names (`__all__`), in source order; kind: function/class/data."
    import importlib, inspect
    m = importlib.import_module(mod)
    src = Path(m.__file__).read_text(encoding='utf-8')
    names = getattr(m, '__all__', None) or [n for n, o in vars(m).items()
                                            if not n.startswith('_') and getattr(o, '__module__', None) == mod]
    out = []
    for n in names:
        o = getattr(m, n, None)
        hit = (re.search(rf'^(?:async\s+def|def|class)\s+{re.escape(n)}\b', src, re.M) or
               re.search(rf'^{re.escape(n)}\s*(?::[^=\n]*)?=(?P<rest>.*)$', src, re.M))
        line = src[:hit.start()].count('\n') if hit else len(src)
        if inspect.isclass(o): kind = 'exception' if issubclass(o, BaseException) else 'class'
        elif callable(o): kind = 'function'
        else: kind = 'data'
        cmt = ''
        if kind == 'data' and hit and 'rest' in hit.groupdict():
            c = re.search(r'#\s*(.*)$', hit.group('rest'))  # the house style documents constants by a trailing comment
            cmt = c.group(1).strip() if c else ''
            if not cmt:
                before = src[:hit.start()].rstrip('\n').splitlines()[-1:]  # or a `#:`/`#` comment line above
                if before and before[0].lstrip().startswith('#'): cmt = before[0].lstrip('#: ').strip()
        out.append((line, kind, n, o, cmt))
    return [(k, n, o, c) for _, k, n, o, c in sorted(out, key=lambda t: t[0])]


VALUE_MAX = 80  # constants whose repr is longer are listed without their value


def api_page(mod: str, nb: Path | None) -> str:
    "MyST source of the API reference page of module `mod`: its functions and classes, then its constants."
    head = f'# {mod}\n\n' + (f'From the notebook [{nb_title(nb)}](../{nb.name}).\n\n' if nb else '')
    try: members = _api_members(mod)
    except Exception:  # let autodoc say why the module does not import (a broken-content warning)
        return head + f'```{{eval-rst}}\n.. automodule:: {mod}\n   :members:\n```\n'
    rst = [f'.. automodule:: {mod}', '   :no-members:', '']
    for kind, n, o, _ in members:
        if kind == 'data': continue
        rst += [f'.. auto{kind}:: {mod}.{n}']
        if kind in ('class', 'exception'):
            rst += ['   :members:']
            if any(b is not object for b in o.__bases__): rst += ['   :show-inheritance:']
        rst += ['']
    consts = [(n, o, c) for k, n, o, c in members if k == 'data']
    if consts: rst += ['.. rubric:: Constants', '']
    for n, o, c in consts:
        rst += [f'.. autodata:: {mod}.{n}'] + (['   :no-value:'] if len(repr(o)) > VALUE_MAX else [])
        rst += [''] + ([f'   {_md2rst(c)}', ''] if c else [])
    return head + '```{eval-rst}\n' + '\n'.join(rst) + '\n```\n'


def write_toc(stage: Path, index: str, modules: list[str], guides: list[str], api: list[str]):
    "Write `_toc.yml`: index, module notebooks, tutorials/reproduction, API reference."
    import yaml
    parts = [dict(caption=MODULES_CAPTION, chapters=[dict(file=f) for f in modules]),
             dict(caption=GUIDES_CAPTION, chapters=[dict(file=f) for f in guides]),
             dict(caption=API_CAPTION, chapters=[dict(file=f) for f in api])]
    toc = dict(format='jb-book', root=index, parts=[p for p in parts if p['chapters']])
    (stage/'_toc.yml').write_text(yaml.safe_dump(toc, sort_keys=False))


def book_config() -> dict:
    "The Jupyter Book `_config.yml` of the site."
    return dict(
        title=TITLE, author=AUTHOR, copyright=time.strftime('%Y'), logo='',
        only_build_toc_files=True,
        exclude_patterns=['_build', '.doctrees', '**.ipynb_checkpoints'],
        execute=dict(execute_notebooks='off'),
        parse=dict(myst_enable_extensions=['colon_fence', 'dollarmath', 'amsmath', 'linkify', 'substitution',
                                           'tasklist'],
                   myst_url_schemes=['mailto', 'http', 'https']),
        html=dict(use_repository_button=True, use_issues_button=False, use_edit_page_button=False,
                  home_page_in_navbar=True, use_multitoc_numbering=False, baseurl='', favicon='', extra_footer=''),
        launch_buttons=dict(notebook_interface='classic', binderhub_url='', jupyterhub_url='', thebe=False,
                            colab_url=''),
        repository=dict(url=REPO_URL, path_to_book='nbs', branch='main'),
        latex=dict(latex_documents=dict(targetname='attattr.tex')),
        sphinx=dict(
            extra_extensions=['sphinx.ext.autodoc', 'sphinx.ext.napoleon'],
            local_extensions={'build_docs': str(Path(__file__).resolve().parent)},
            config=dict(
                show_warning_types=True,
                myst_linkify_fuzzy_links=False,  # else "README.md" becomes a link to http://README.md
                default_role='py:obj',  # nbdev docstrings name objects in `backticks`: link them
                autodoc_member_order='bysource',
                autodoc_typehints='signature',
                autodoc_preserve_defaults=False,  # True fails on some signatures (Sphinx 7.4: "pop from empty list")
                autodoc_inherit_docstrings=False,
                autodoc_mock_imports=[],
                add_module_names=False,
                napoleon_google_docstring=True, napoleon_numpy_docstring=True,
                nb_merge_streams=True,
                nb_render_markdown_format='myst',  # Markdown outputs (tables from code cells) with MyST's extensions
                # static fallbacks (PNG, SVG, HTML) win over live widgets, which need a CDN and a kernel state
                nb_mime_priority_overrides=[['html', 'application/vnd.jupyter.widget-view+json', 95]],
                html_static_path=['_static'],
                html_css_files=['attattr.css'],
                html_show_sourcelink=False,
                html_theme_options=dict(repository_url=REPO_URL, use_repository_button=True,
                                        use_download_button=True, show_toc_level=2,
                                        navigation_with_keys=False),
                language='en',
            )))


# ---------------------------------------------------------------- the Sphinx extension: docments → parameter lists
def _docments_lines(obj) -> list[str]:
    "reST field list (`:param x: ...`, `:returns: ...`) from the docments comments of `obj`'s parameters."
    try:
        from fastcore.docments import docments
        d = docments(obj, full=True)
    except Exception: return []
    out = []
    for name, info in d.items():
        doc = (info.get('docment') or '').strip() if isinstance(info, dict) else ''
        if not doc or name in ('self', 'cls'): continue
        doc = ' '.join(doc.split())
        out.append(f':returns: {doc}' if name == 'return' else f':param {name}: {doc}')
    return out


def _md2rst(line: str) -> str:
    "nbdev docstrings are Markdown-ish: keep `|x|` from being a reST substitution and `` `Name`s `` an error."
    line = re.sub(r'(?<!\\)\|', r'\\|', line)
    # backtick pairs, left to right (a lookahead alone would pair the closing backtick of one with the next one)
    return re.sub(r'`[^`]+`', lambda m: m.group(0) + ('\\ ' if re.match(r'[A-Za-z0-9]', line[m.end():m.end() + 1])
                                                      else ''), line)


def _process_docstring(app, what, name, obj, options, lines):
    if what == 'module':  # nbdev's "Docs: <url>" line points at a Quarto site that this one replaces
        lines[:] = [l for l in lines if not l.startswith('Docs: ')]
    elif what in ('data', 'attribute') and getattr(obj, '__doc__', None) == getattr(type(obj), '__doc__', 0):
        lines[:] = []  # a constant without a comment: not the docstring of its type (dict, tuple, ...)
    elif what in ('function', 'method', 'class'):
        have = '\n'.join(lines)
        extra = [l for l in _docments_lines(obj) if f":{l.split(':')[1]}:" not in have]
        if extra: lines.extend([''] + extra if lines else extra)
    lines[:] = [_md2rst(l) for l in lines]


def setup(app):
    "Sphinx extension: API reference pages list parameters from docments comments."
    app.connect('autodoc-process-docstring', _process_docstring)
    return dict(parallel_read_safe=True, parallel_write_safe=True)


# ---------------------------------------------------------------- warnings and the build
def classify(line: str) -> str | None:
    "'broken', 'harmless' or 'other' for a Sphinx warning line; None when the line is no warning."
    if not _WARN_LINE.match(line.strip()): return None
    for pat, _ in BROKEN:
        if re.search(pat, line): return 'broken'
    for pat, _ in HARMLESS:
        if re.search(pat, line): return 'harmless'
    return 'other'


def warning_lines(text: str) -> list[str]:
    "One entry per warning (a warning's continuation lines are folded into it)."
    out = []
    for l in _ANSI.sub('', text).splitlines():
        if _WARN_LINE.match(l.strip()): out.append(l.strip())
        elif out and l.strip() and l.startswith((' ', '\t')): out[-1] += ' ' + l.strip()
    return out


class _Tee(io.StringIO):
    def __init__(self, echo): super().__init__(); self.echo = echo
    def write(self, s):
        if self.echo: sys.__stderr__.write(s)
        return super().write(s)
    def isatty(self): return False


def stage_book(stage: Path) -> dict:
    "Write the whole book source (notebooks, API pages, toc, config, css) into `stage`; return what went where."
    import yaml
    stage.mkdir(parents=True, exist_ok=True)
    index, mods, guides = toc_parts()
    notes = [w for nb in [p for p in [index] if p] + mods + guides for w in stage_notebook(nb, stage/nb.name, stage)]
    if index is None:
        (stage/'index.md').write_text(f'# {TITLE}\n\nThe documentation of `{PKG}`.\n')
    nb_of_mod = {default_exp(p): p for p in mods}
    (stage/API_DIR).mkdir(exist_ok=True)
    api = []
    for mod in api_modules():
        short = mod.split('.', 1)[1]
        (stage/API_DIR/f'{short}.md').write_text(api_page(mod, nb_of_mod.get(short)))
        api.append(f'{API_DIR}/{short}')
    write_toc(stage, 'index', [p.stem for p in mods], [p.stem for p in guides], api)
    (stage/'_config.yml').write_text(yaml.safe_dump(book_config(), sort_keys=False))
    (stage/'_static').mkdir(exist_ok=True)
    (stage/'_static'/'attattr.css').write_text(CSS)
    return dict(index=index.name if index else None, modules=[p.name for p in mods], guides=[p.name for p in guides],
                api=api, notes=notes)


def _clear(folder: Path, marker: str):
    "Empty `folder` for a new build, only when it is empty or what an earlier build left (it holds `marker`)."
    if not folder.exists(): return
    if any(folder.iterdir()) and not (folder/marker).exists():
        raise SystemExit(f'build_docs: error: {folder} is not empty and not an earlier build: refusing to replace it')
    shutil.rmtree(folder)


def build(out=DEFAULT_OUT, stage=None, jobs=1, verbose=False) -> dict:
    "Stage and build the site into `out`; return a report (pages, warnings by kind, seconds, status)."
    from jupyter_book.sphinx import build_sphinx
    from sphinx.util.console import nocolor
    nocolor()
    t0 = time.time()
    os.environ.setdefault('ATTATTR_STATIC', '1')  # widgets degrade to static figures if anything executes
    os.environ.setdefault('MPLBACKEND', 'Agg')
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))  # the API pages document the checkout's package
    out = Path(out).resolve()
    tmp = None
    if stage is None: stage = Path(tmp := tempfile.mkdtemp(prefix='attattr-docs-'))
    stage = Path(stage).resolve()
    _clear(stage, '_toc.yml')
    try:
        _clear(out, '.buildinfo')
        staged = stage_book(stage)
        t_stage = time.time() - t0
        tee = _Tee(verbose)
        with contextlib.redirect_stderr(tee), contextlib.redirect_stdout(io.StringIO() if not verbose else sys.stdout):
            # what `jupyter-book build` passes (jupyter_book/cli/main.py), with our own output folder
            res = build_sphinx(stage, out, doctreedir=stage/'.doctrees', path_config=str(stage/'_config.yml'),
                               confoverrides=dict(external_toc_path=(stage/'_toc.yml').as_posix(),
                                                  latex_individualpages=False),
                               noconfig=True, freshenv=True, jobs=jobs, quiet=not verbose)
        log = tee.getvalue()
    finally:
        if tmp: shutil.rmtree(tmp, ignore_errors=True)
    warns = warning_lines(log) + staged.pop('notes')
    kinds = {k: [w for w in warns if classify(w) == k] for k in ('broken', 'harmless', 'other')}
    failed = not isinstance(res, int) or res != 0
    return dict(out=str(out), seconds=round(time.time() - t0, 1), stage_seconds=round(t_stage, 1), staged=staged,
                pages=sorted(str(p.relative_to(out)) for p in out.rglob('*.html')) if out.exists() else [],
                warnings=kinds, status=res if isinstance(res, int) else f'{type(res).__name__}: {res}',
                error=log if failed else '', ok=not failed and not kinds['broken'])


def main(argv=None):
    ap = argparse.ArgumentParser(prog='build_docs', description=__doc__.splitlines()[0])
    ap.add_argument('--out', default=str(DEFAULT_OUT), help='the site folder (default: _build/html)')
    ap.add_argument('--stage', default=None, help='keep the staged book source here (default: a temp folder)')
    ap.add_argument('--report', default=None, help='write the build report (JSON) here')
    ap.add_argument('--jobs', type=int, default=1, help='parallel Sphinx readers')
    ap.add_argument('--verbose', action='store_true', help="show Sphinx's own output")
    a = ap.parse_args(argv)
    rep = build(a.out, a.stage, a.jobs, a.verbose)
    if a.report: Path(a.report).write_text(json.dumps(rep, indent=1))
    w = rep['warnings']
    for w_ in w['harmless']: print(f'docs: filtered (harmless): {w_}')
    for w_ in w['other']: print(f'docs: warning: {w_}')
    for w_ in w['broken']: print(f'docs: BROKEN: {w_}', file=sys.stderr)
    if rep['error']: print(rep['error'], file=sys.stderr)
    print(f"docs: {len(rep['pages'])} pages in {rep['seconds']}s → {rep['out']} "
          f"({len(w['broken'])} broken, {len(w['other'])} other, {len(w['harmless'])} harmless warnings filtered)")
    if not rep['ok']: print(f"docs: error: the site is broken (status {rep['status']})", file=sys.stderr)
    return 0 if rep['ok'] else 1


if __name__ == '__main__': sys.exit(main())
