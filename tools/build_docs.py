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
   source itself is folded under a toggle (`FOLD_EXPORTS`). Names of the package in backticks in the prose
   (`attattr.attribution.attribute`, `tree.build_tree`, `top_interactions`) link to their API entries (`link_api`).
2. `_toc.yml` is written: `index` first, then the module notebooks (those with `#| default_exp`) in file order, then
   the other notebooks (the tutorial, the reproduction, ...), then the API reference: a page per `attattr` module
   (Sphinx autodoc of its `__all__`, parameters from the docments comments, constants with their comments).
3. `_config.yml` is written and the book is built with Jupyter Book's Sphinx entry point into `--out`.
The site needs no network: formulas are typeset by MathJax 3 copied into the site (`_static/mathjax/`, from the
`sphinx-mathjax-offline` package of the dev extra), never from a CDN. `--flags` stay two hyphens (the `KeepFlags`
transform escapes them from Sphinx's smart dashes), so copied commands work. Docments comments appear whole, the
lines that continue them included (`docments_whole`, `constant_comments`: fastcore keeps only a comment's first line).
A missing requirement stops the build with one line.
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

# Formulas are typeset by MathJax 3 served from the site itself (`_static/mathjax/`), never from a CDN: its files come
# from a PyPI package (a dev dependency), or from a MathJax 3 folder of one's own (`$ATTATTR_MATHJAX`, e.g. npm's
# mathjax@3/es5). Only what the pages load (at once or on demand) is copied.
MATHJAX_REQ = 'sphinx-mathjax-offline==0.0.2'  # MathJax 3.2.2 in a wheel (used here as files, not as an extension)
MATHJAX_DIST = 'sphinx-mathjax-offline'  # its distribution name; its files are under static/mathjax/
MATHJAX_ENV = 'ATTATTR_MATHJAX'
MATHJAX_ENTRY = 'tex-chtml.js'  # TeX in, HTML+CSS out; MathJax loads the rest from the folder it came from
MATHJAX_PARTS = ('tex-chtml.js', 'input/tex', 'output/chtml', 'ui', 'a11y', 'sre')  # fonts, TeX extensions, menu
MATHJAX_STATIC = 'mathjax'  # its folder under the site's `_static/`
# what the build imports, importable name → requirement (all in the `dev` extra)
REQUIREMENTS = {'jupyter_book': 'jupyter-book>=1,<2', 'nbdev': 'nbdev>=3,<4', 'yaml': 'pyyaml'}

LINK_API = True  # package names in backticks in the prose link to their API entries (`link_api`)
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
/* a content column wide enough for the tables and figures (the themes cap it at 60em in an 88rem page) */
.bd-page-width { max-width: 120rem; }
.bd-main .bd-content .bd-article-container { max-width: 76rem; }
@media (min-width: 992px) {  /* narrower sidebars on a desktop screen: ~960 px of content at 1440 px */
  .bd-sidebar-primary { width: 16rem; }
  html { --pst-sidebar-secondary: 14rem; }
}
/* a table wider than the column scrolls inside it instead of overflowing the page */
.bd-article table { display: block; max-width: 100%; overflow-x: auto; }
/* the landing page's opening figure, centred */
#start-here-figure img, .cell.tag_landing-figure img { display: block; margin: 0 auto; }
"""


# ---------------------------------------------------------------- what the build needs
def mathjax_dir() -> Path:
    "The MathJax 3 folder the site serves: `$ATTATTR_MATHJAX`, else the one of the `sphinx-mathjax-offline` package."
    if d := os.environ.get(MATHJAX_ENV):
        if (Path(d)/MATHJAX_ENTRY).is_file(): return Path(d)
        raise SystemExit(f'build_docs: error: ${MATHJAX_ENV}={d} holds no {MATHJAX_ENTRY} (it names a MathJax 3 '
                         f'folder, e.g. npm\'s mathjax@3/es5)')
    import importlib.metadata as md
    try: files = md.files(MATHJAX_DIST) or []
    except md.PackageNotFoundError: files = []
    js = next((Path(f.locate()) for f in files if f.name == MATHJAX_ENTRY and 'static/mathjax' in f.as_posix()), None)
    if js is None or not js.is_file():
        raise SystemExit(f'build_docs: error: MathJax is missing: the site typesets its formulas with a copy of its own '
                         f'(no CDN). Install the dev tools (pip install -e ".[dev]") or just pip install '
                         f'"{MATHJAX_REQ}" (or set ${MATHJAX_ENV} to a MathJax 3 folder)')
    return js.parent


def check_requirements():
    "Stop with one clear message when a package the build needs is missing."
    import importlib.util
    missing = [req for mod, req in REQUIREMENTS.items() if importlib.util.find_spec(mod) is None]
    if missing:
        raise SystemExit(f'build_docs: error: missing {", ".join(missing)}: install the dev tools into this '
                         f'environment (pip install -e ".[dev]")')
    mathjax_dir()


def copy_mathjax(static: Path):
    """Copy the MathJax files the pages load into the site's static folder `static`. Done by the Sphinx extension when
    the site is built: Jupyter Book would add every `.js` file of the book's static folders to every page."""
    src, dest = mathjax_dir(), static/MATHJAX_STATIC
    for part in MATHJAX_PARTS:
        if (src/part).is_dir(): shutil.copytree(src/part, dest/part, dirs_exist_ok=True)
        elif (src/part).is_file():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src/part, dest/part)


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


# ---------------------------------------------------------------- docments comments, whole
# fastcore's `docments` (behind nbdev's `show_doc` and the API pages) keeps only the first line of a comment; the
# house style continues a long one on comment-only lines below it:
#     def attribute(inputs, # one example: ..., or
#                           # `Features`; or a list of them ...
#     FAITHFUL = dict(...)  # the original settings (its 16 points per
#     # forward were a memory limit ...)
# A parameter's comment goes on over the comment-only lines right below it whose `#` stands right of the parameter
# (a comment line level with the parameters documents the next one, fastcore's comment-above style). A module-level
# constant's trailing comment goes on over every comment-only line right below it; a comment block above a constant
# is its comment only when it continues no trailing comment. nbdev's `# %%` cell markers are never comments.
def _comment_lines(src: str) -> tuple[dict, dict]:
    "({line: (column, text)} of the comments of `src`, {line: column of its first code token}); lines 1-based."
    import tokenize
    comments, code = {}, {}
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    try:
        for t in tokenize.generate_tokens(io.StringIO(src).readline):
            if t.type == tokenize.COMMENT:
                text = t.string[1:].strip()
                if not text.startswith('%%'): comments[t.start[0]] = (t.start[1], text)  # nbdev's cell markers: not docs
            elif t.type not in skip:
                code.setdefault(t.start[0], t.start[1])
                for l in range(t.start[0] + 1, t.end[0] + 1): code.setdefault(l, 0)  # a string over several lines
    except (tokenize.TokenError, SyntaxError): pass
    return comments, code


def _below(comments, code, line, right_of=-1, stop=None) -> list[int]:
    "The comment-only lines right below `line` (their `#` right of column `right_of`, before line `stop`)."
    out, l = [], line + 1
    while l in comments and l not in code and comments[l][0] > right_of and (stop is None or l < stop):
        out.append(l); l += 1
    return out


def _above(comments, code, line, taken=()) -> list[int]:
    "The comment-only lines right above `line` that no trailing comment above them has taken."
    out, l = [], line - 1
    while l in comments and l not in code and l not in taken: out.insert(0, l); l -= 1
    return out


def param_comments(obj) -> dict:
    """{parameter (or 'return'): its whole docments comment (lines joined by newlines), or None where the only comment
    lines fastcore would read for it continue its neighbour's} from `obj`'s source; parameters without any left out."""
    import ast, textwrap
    from fastcore.docments import get_source
    try:
        src = textwrap.dedent(get_source(obj) or '')
        defn = ast.parse(src).body[0]
    except Exception: return {}
    if isinstance(defn, (ast.FunctionDef, ast.AsyncFunctionDef)):
        a = defn.args
        locs = {p.lineno: (p.arg, p.col_offset)
                for p in [*a.posonlyargs, *a.args, a.vararg, *a.kwonlyargs, a.kwarg] if p is not None}
        if defn.returns is not None: locs.setdefault(defn.returns.lineno, ('return', defn.returns.col_offset))
        stop = defn.body[0].lineno  # the signature ends where the body starts
    elif isinstance(defn, ast.ClassDef):  # a dataclass: its annotated fields
        locs = {t.lineno: (t.target.id, t.col_offset) for t in defn.body
                if isinstance(t, ast.AnnAssign) and isinstance(t.target, ast.Name)}
        stop = None
    else: return {}
    comments, code = _comment_lines(src)
    docs, taken = {}, set()
    for line, (name, col) in sorted(locs.items()):
        if line in comments and line in code:  # a trailing comment, and the lines that continue it
            more = _below(comments, code, line, col, stop)
            taken.update(more)
            docs[name] = '\n'.join(comments[l][1] for l in [line, *more])
    for line, (name, col) in sorted(locs.items()):
        if name in docs or line - 1 not in comments or line - 1 in locs: continue  # fastcore reads no comment for it
        above = [l for l in _above(comments, code, line, taken) if l not in locs]
        docs[name] = textwrap.dedent('\n'.join(comments[l][1] for l in above)) or None
    return docs


def docments_whole(s, full=False, **kw):
    "fastcore's `docments`, each comment whole (the lines that continue it included, none of its neighbour's)."
    import dataclasses, inspect
    from fastcore import docments as fd
    res = (_fc_docments or fd.docments)(s, full=True, **kw)
    if inspect.isclass(s) and not dataclasses.is_dataclass(s): s = s.__init__
    mine, o = {}, s
    while o is not None:  # as fastcore: a `delegates` wrapper's own comments first
        for k, v in param_comments(o).items(): mine.setdefault(k, v)
        o = getattr(o, '__delwrap__', None)
    for k, d in res.items():
        if k not in mine: continue
        # no comment of its own: what `Annotated` metadata says, as fastcore (a NumPy docstring's is not looked up)
        d['docment'] = mine[k] or next((x for x in fd.ann_parts(d.get('anno'))[1] if isinstance(x, str)), None)
    return res if full else type(res)({k: v['docment'] for k, v in res.items()})


_fc_docments = None  # fastcore's own `docments`, while `whole_docments` replaces it


@contextlib.contextmanager
def whole_docments():
    "nbdev's `show_doc` (fastcore's `DocmentText`) with `docments_whole` in place of `docments`, for the block."
    global _fc_docments
    from fastcore import docments as fd
    if _fc_docments is not None: yield; return  # already in place
    _fc_docments = fd.docments
    fd.docments = docments_whole
    try: yield
    finally: fd.docments, _fc_docments = _fc_docments, None


_re_source_link = re.compile(r'^\[source\]\(.*$\n?', re.M)


def _align_continuations(md: str) -> str:
    """fastcore writes the lines that continue a parameter's comment level with the parameters (`    # ...`), where they
    read as the next one's comment-above: indent them under the `#` they continue."""
    out, col = [], None
    for line in md.split('\n'):
        if col is not None and line.startswith('    # '): line = ' ' * col + line[4:]
        else:
            i = line.find(', # ')  # fastcore's `param, # comment`
            col = i + 2 if i >= 0 and line.startswith('    ') else None
        out.append(line)
    return '\n'.join(out)


def show_doc_md(dotted: str, level: int = 3) -> str | None:
    "nbdev's `show_doc` Markdown for the object named `dotted` (signature with docments comments, docstring), or None."
    import inspect
    from nbdev.showdoc import show_doc
    o = _resolve(dotted)
    if o is None or not (callable(o) or isinstance(o, property)): return None
    try:
        with whole_docments(): md = show_doc(o, name=dotted.split('.', 2)[-1], title_level=level)._repr_markdown_()
    except Exception: return None
    md = _align_continuations(md)
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


# ---------------------------------------------------------------- links from the prose to the API reference
# A name of the package in backticks in a markdown cell links to its API entry, as in nbdev's docs: a dotted name
# (`attattr.attribution.attribute`, `attattr.attribution.Attribution.to_html`, `tree.build_tree`) whenever it resolves; a bare one
# (`top_interactions`, `attribute()`) when exactly one module defines it in its `__all__` and it has at least
# `LINK_MIN_CHARS` characters. Fenced code, headings, raw HTML lines and backticks already in a link are left alone.
# Sphinx's `py:obj` role does the linking: a name without an API entry stays plain code, never a broken link.
LINK_MIN_CHARS = 4  # shorter bare names (`CLS`, `OUT`) are too often something else in prose
_re_fence = re.compile(r'^(```|~~~).*?^\1[ \t]*$', re.M | re.S)
_re_md_link = re.compile(r'(!?\[[^\]]*\]\([^)]*\))')  # a markdown link or image, kept whole
_re_tick = re.compile(r'(?<![\w`\[}])`(?P<name>[A-Za-z_][\w.]*)(?P<call>\(\))?`(?![\w`\]])')


def api_names(pkg=PKG) -> dict[str, str]:
    """{bare name: 'pkg.module.name'} of the names defined by exactly one module's `__all__` (the API pages' entries);
    under '' the dotted names of the modules."""
    import importlib
    owners = {}
    for mod in api_modules():
        try: m = importlib.import_module(mod)
        except Exception: continue
        for n in getattr(m, '__all__', []):
            o = getattr(m, n, None)
            if getattr(o, '__module__', mod) == mod: owners.setdefault(n, []).append(mod)
    out = {n: f'{ms[0]}.{n}' for n, ms in owners.items() if len(ms) == 1}
    out[''] = tuple(api_modules())  # the modules themselves, linked by their dotted names
    return out


def _api_target(name: str, names: dict) -> str | None:
    "The full name an inline-code `name` links to, or None."
    if name.startswith(f'{PKG}.'): return name if name.count('.') >= 2 and _resolve(name) is not None else None
    head, _, rest = name.partition('.')
    if rest and f'{PKG}.{head}' in names.get('', ()):  # `models.load_model`: a name in one of the package's modules
        return _api_target(f'{PKG}.{name}', names)
    if not head or head not in names or (not rest and len(name) < LINK_MIN_CHARS): return None
    full = f'{names[head]}.{rest}' if rest else names[head]
    return full if _resolve(full) is not None else None


def link_api(md: str, names: dict) -> str:
    "Markdown `md` with the package names in backticks as `{py:obj}` roles (links to their API entries)."
    def fix_line(line):
        if line.lstrip().startswith(('#', '<')): return line
        def sub(m):
            name, call = m.group('name'), m.group('call') or ''
            if name in names.get('', ()) and not call: return f'{{py:mod}}`{name}`'  # a module: its API page
            full = _api_target(name, names)
            if full is None: return m.group(0)
            return f'{{py:obj}}`{name}{call}`' if full == name and not call else f'{{py:obj}}`{name}{call} <{full}>`'
        parts = _re_md_link.split(line)  # links' own text keeps its backticks (no link inside a link)
        return ''.join(p if i % 2 else _re_tick.sub(sub, p) for i, p in enumerate(parts))
    out, pos = [], 0
    for f in _re_fence.finditer(md):
        out += ['\n'.join(map(fix_line, md[pos:f.start()].split('\n'))), f.group(0)]
        pos = f.end()
    out.append('\n'.join(map(fix_line, md[pos:].split('\n'))))
    return ''.join(out)


def _link_cells(nb):
    "Link the package names in the markdown cells of `nb` to the API reference (`link_api`)."
    names = _api_names_cached()
    for c in nb.cells:
        if c.cell_type == 'markdown' and c.get('source'): c.source = link_api(c.source, names)


_API_NAMES = None


def _api_names_cached() -> dict:
    global _API_NAMES
    if _API_NAMES is None: _API_NAMES = api_names()
    return _API_NAMES


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
    if LINK_API: _link_cells(nb)
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


def constant_comments(src: str) -> dict[str, str]:
    """{name: its whole comment, lines joined by spaces} of the module-level constants of source `src`: the trailing
    comment of its assignment (on its first line, else its last) with the comment-only lines right below it, else the
    comment block right above it (`#:` or `#`) unless that block continues the trailing comment of a line above."""
    import ast
    try: body = ast.parse(src).body
    except SyntaxError: return {}
    comments, code = _comment_lines(src)
    stmts = []  # (names, first line, line of its trailing comment or None)
    for t in body:
        targets = t.targets if isinstance(t, ast.Assign) else [t.target] if isinstance(t, ast.AnnAssign) else []
        names = [e.id for x in targets for e in (x.elts if isinstance(x, ast.Tuple) else [x]) if isinstance(e, ast.Name)]
        at = next((l for l in (t.lineno, t.end_lineno) if l in comments and l in code), None)
        stmts.append((names, t.lineno, at))
    docs, taken = {}, set()
    for names, first, at in stmts:
        if at is None: continue
        lines = [at, *_below(comments, code, at)]
        taken.update(lines[1:])
        for n in names: docs[n] = ' '.join(comments[l][1] for l in lines)
    for names, first, at in stmts:
        if at is not None or not names: continue
        above = _above(comments, code, first, taken)
        if above and above[0] - 1 not in taken:
            for n in names: docs[n] = ' '.join(comments[l][1].lstrip(':').strip() for l in above)
    return {k: v for k, v in docs.items() if v}


def _api_members(mod: str):
    "[(kind, name, obj, comment)] of a module's public names (`__all__`), in source order; kind: function/class/data."
    import importlib, inspect
    m = importlib.import_module(mod)
    src = Path(m.__file__).read_text(encoding='utf-8')
    names = getattr(m, '__all__', None) or [n for n, o in vars(m).items()
                                            if not n.startswith('_') and getattr(o, '__module__', None) == mod]
    consts, out = constant_comments(src), []
    for n in names:
        o = getattr(m, n, None)
        hit = (re.search(rf'^(?:async\s+def|def|class)\s+{re.escape(n)}\b', src, re.M) or
               re.search(rf'^{re.escape(n)}\s*(?::[^=\n]*)?=(?P<rest>.*)$', src, re.M))
        line = src[:hit.start()].count('\n') if hit else len(src)
        if inspect.isclass(o): kind = 'exception' if issubclass(o, BaseException) else 'class'
        elif callable(o): kind = 'function'
        else: kind = 'data'
        out.append((line, kind, n, o, consts.get(n, '') if kind == 'data' else ''))
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
                # formulas: MathJax from the site itself (copy_mathjax), no CDN
                mathjax_path=f'{MATHJAX_STATIC}/{MATHJAX_ENTRY}',
            )))


# ---------------------------------------------------------------- the Sphinx extension: docments → parameter lists
def _docments_lines(obj) -> list[str]:
    "reST field list (`:param x: ...`, `:returns: ...`) from the docments comments of `obj`'s parameters."
    try: d = docments_whole(obj, full=True)
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


_re_flag = re.compile(r'(?<![-\w])--(?=\w)')  # `--model`, `--n_steps`: not ` -- ` (a dash) nor `---`


def _keep_flags():
    "The docutils transform that keeps `--flags` two hyphens (a class made when docutils is there)."
    from docutils import nodes
    from docutils.transforms import Transform

    class KeepFlags(Transform):
        """`--flag` in running text stays two ASCII hyphens, so that copied commands work: its hyphens are escaped (the
        null-escapes of docutils) from the smart dashes of SmartQuotes, which runs after; ` -- ` still becomes a dash."""
        default_priority = 740  # Sphinx's SmartQuotes: 750, docutils': 850

        def apply(self):
            for t in list(self.document.findall(nodes.Text)):
                if '--' in t and _re_flag.search(t) and t.parent is not None:
                    t.parent.replace(t, nodes.Text(_re_flag.sub('\x00-\x00-', str(t))))
    return KeepFlags


def _mathjax_into_site(app, exc):
    if exc is None and app.builder.format == 'html': copy_mathjax(Path(app.outdir)/'_static')


def setup(app):
    "Sphinx extension: parameter lists from docments comments, `--flags` kept two hyphens, MathJax served by the site."
    app.connect('autodoc-process-docstring', _process_docstring)
    app.connect('build-finished', _mathjax_into_site)
    app.add_transform(_keep_flags())
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
    check_requirements()
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
