"""The documentation site: `tools/build_docs.py` turns every notebook into a page, writes the API reference, keeps the
figures, and reports no broken-content warnings. One build per test session (about a minute on a free machine),
shared with tests/test_browser.py; `ATTATTR_SKIP_DOCS=1` skips both."""
import importlib, inspect, json, os, re, subprocess, sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit, unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tools'))
import build_docs as bd  # noqa: E402

BUILD_TIMEOUT_S = 900  # a loaded 2-core machine needs ~3 minutes; a free one ~1
SKIP = os.environ.get('ATTATTR_SKIP_DOCS') == '1'


def build_site(tmp_path_factory):
    "Build the site once per session: (site folder, build report). Shared with test_browser.py."
    if SKIP: pytest.skip('ATTATTR_SKIP_DOCS=1: documentation build skipped')
    base = tmp_path_factory.getbasetemp()/'docs-site'
    rep = base/'report.json'
    if not rep.exists():
        base.mkdir(exist_ok=True)
        (base/'notebooks.json').write_text(json.dumps(  # what nbs/ holds when the build starts
            sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith(('_', '.')))))
        env = dict(os.environ, MPLBACKEND='Agg', HF_HUB_OFFLINE='1', ATTATTR_STATIC='1')
        r = subprocess.run([sys.executable, str(ROOT/'tools'/'build_docs.py'), '--out', str(base/'html'),
                            '--report', str(rep)], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=BUILD_TIMEOUT_S)
        (base/'build.log').write_text(r.stdout + r.stderr)
        if not rep.exists(): pytest.fail(f'the docs build crashed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}')
    rep = json.loads(rep.read_text())
    rep['notebooks_before'] = json.loads((base/'notebooks.json').read_text())
    return base/'html', rep


@pytest.fixture(scope='module')
def site(tmp_path_factory): return build_site(tmp_path_factory)


class Page(HTMLParser):
    """The bits of a built page the tests look at: local asset references, scripts, images, sidebar links, text, the
    text of the `show_doc` entries, and the description (`<dd>`) of each API entry by its id."""
    def __init__(self, path):
        super().__init__(convert_charrefs=True)
        self.assets, self.scripts, self.imgs, self.nav, self.text, self.ids = [], [], [], [], [], set()
        self.showdoc, self.dd = [], {}
        self._nav_depth, self._showdoc_depth, self._dt, self._dds = 0, 0, None, []
        self.feed(Path(path).read_text(encoding='utf-8'))

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get('id'): self.ids.add(a['id'])
        if tag == 'script' and a.get('src'): self.scripts.append(a['src'])
        if tag == 'div' and self._showdoc_depth: self._showdoc_depth += 1
        elif tag == 'div' and 'showdoc' in (a.get('class') or '').split(): self._showdoc_depth = 1
        if tag == 'dt': self._dt = a.get('id')
        if tag == 'dd':
            self._dds.append(self._dt)
            if self._dt: self.dd[self._dt] = ''
            self._dt = None
        if tag == 'nav' and 'bd-docs-nav' in (a.get('class') or ''): self._nav_depth = 1
        elif tag == 'nav' and self._nav_depth: self._nav_depth += 1
        if tag == 'a' and self._nav_depth and a.get('href'): self.nav.append(a['href'])
        ref = a.get('src') if tag in ('img', 'script') else a.get('href') if tag == 'link' else None
        if ref and is_local(ref): self.assets.append(ref)
        if tag == 'img': self.imgs.append(a.get('src', ''))

    def handle_endtag(self, tag):
        if tag == 'nav' and self._nav_depth: self._nav_depth -= 1
        if tag == 'div' and self._showdoc_depth: self._showdoc_depth -= 1
        if tag == 'dd' and self._dds: self._dds.pop()

    def handle_data(self, data):
        self.text.append(data)
        if self._showdoc_depth: self.showdoc.append(data)
        for i in self._dds:
            if i: self.dd[i] += data


def is_local(ref):
    "A reference served by the site itself (not a URL elsewhere, not inline data)."
    return bool(ref) and not re.match(r'^([a-z][a-z0-9+.-]*:|//|#)', ref, re.I)


def local_file(page: Path, ref: str) -> Path:
    return (page.parent/unquote(urlsplit(ref).path)).resolve()


# ---------------------------------------------------------------- fast: the build's own logic
def test_classify_warnings():
    "Content-breaking warnings fail the build, the listed harmless ones are filtered, the rest reported."
    c = bd.classify
    assert c('/s/04_x.ipynb:3: WARNING: image file not readable: _assets/x.png [image.not_readable]') == 'broken'
    assert c('/s/_toc.yml: WARNING: toctree contains reference to nonexisting document \'05_x\'') == 'broken'
    assert c("/s/a.ipynb:2: WARNING: 'myst' cross-reference target not found: 'b' [myst.xref_missing]") == 'broken'
    assert c('WARNING: Notebook JSON is invalid: x [mystnb.nbformat]') == 'broken'
    assert c("/s/07_w.ipynb:40002: WARNING: No mime type available in priority list for builder 'html' "
             "('application/x-foo') [mystnb.mime_priority]") == 'broken'
    assert c('WARNING: autodoc: failed to import module \'tree\' from module \'attattr\'') == 'broken'
    assert c('/s/a.ipynb:5: WARNING: Non-consecutive header level increase; H1 to H3 [myst.header]') == 'harmless'
    assert c('x.py:docstring of f:1: WARNING: Inline emphasis start-string without end-string. [docutils]') == 'harmless'
    assert c('WARNING: something new [foo.bar]') == 'other'
    assert c('reading sources... [ 50%] 04_attribution') is None
    assert bd.warning_lines('\x1b[91m/a.md:1: WARNING: one\x1b[39;49;00m\n  more\nplain\n') == ['/a.md:1: WARNING: one more']


def test_docstrings_made_rst_safe():
    "nbdev docstrings are Markdown-ish: `Name`s and |x| must not break the API pages."
    assert bd._md2rst('Run `fn` as a script, `AttattrError`s reported, |x|') == \
        'Run `fn` as a script, `AttattrError`\\ s reported, \\|x\\|'


DOCMENTS_SRC = '''
# %% ../nbs/00_x.ipynb 3
A = 1  # first line of A,
# its second line, at column 0
B = (1, 2)
C = 3  # C: one line
       # and an aligned second one

#: D, from the comment above it
D = 4

# %% ../nbs/00_x.ipynb 5
E = 5
F = {'x': '# no comment',  # F, after a string holding a hash
     'y': 2}
__all__ = ['A', 'B', 'C', 'D', 'E', 'F', 'f']

def f(a, # first line of a,
         # its second line
      b=1, # b: one line
      # c: comment-above style, level with the parameters
      c=2,
      d=3, # first line of d
           # second line of d
      e=4,
     ) -> int: # the result
    "One line."
    # a comment in the body
    return 1
'''


@pytest.fixture
def docments_mod(tmp_path, monkeypatch):
    "A small module in the house style (nbdev cell markers, multi-line docments comments): its name."
    (tmp_path/'docments_mod.py').write_text(DOCMENTS_SRC)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop('docments_mod', None)
    yield 'docments_mod'
    sys.modules.pop('docments_mod', None)


def test_constant_comments_whole():
    "Each constant gets its whole comment (the lines continuing it too) and never its neighbour's; cell markers are no docs."
    assert bd.constant_comments(DOCMENTS_SRC) == {
        'A': 'first line of A, its second line, at column 0', 'C': 'C: one line and an aligned second one',
        'D': 'D, from the comment above it', 'F': 'F, after a string holding a hash'}


def test_param_comments_whole(docments_mod):
    "A parameter's comment with the lines that continue it; a comment level with the parameters is the next one's."
    f = importlib.import_module(docments_mod).f
    assert dict(bd.docments_whole(f)) == {
        'a': 'first line of a,\nits second line', 'b': 'b: one line',
        'c': 'c: comment-above style, level with the parameters', 'd': 'first line of d\nsecond line of d',
        'e': None, 'return': 'the result'}
    from fastcore import docments as fd
    assert fd.docments(f)['a'] == 'first line of a,'  # fastcore's own, untouched outside the build
    assert bd._docments_lines(f)[0] == ':param a: first line of a, its second line'


def test_show_doc_whole(docments_mod):
    "nbdev's `show_doc` entry (notebook pages) shows each comment whole, continuation lines under the `#` they continue."
    md = bd.show_doc_md(f'{docments_mod}.f')
    lines = md.splitlines()
    i = next(i for i, l in enumerate(lines) if '# first line of a,' in l)
    assert lines[i + 1].strip() == '# its second line' and lines[i + 1].index('#') == lines[i].index('#'), md
    assert '# second line of d' in md and 'c:int=2, # c: comment-above style' in md
    assert re.search(r'^\s*e:int=4,?\s*$', md, re.M), md  # no neighbour's comment
    from fastcore import docments as fd
    assert fd.docments is not bd.docments_whole  # fastcore is patched only while show_doc runs


def test_api_page_constants(docments_mod):
    "The API page source: every constant with its own whole comment."
    src = bd.api_page(docments_mod, None)
    block = lambda n: re.search(rf'autodata:: {docments_mod}\.{n}\n(.*?)(?=\.\. auto|\Z)', src, re.S).group(1)
    assert 'first line of A, its second line, at column 0' in block('A')
    assert 'its second line' not in block('B') and not block('B').strip()
    assert 'C: one line and an aligned second one' in block('C')
    assert 'D, from the comment above it' in block('D')
    assert not block('E').strip()


def test_flags_escape_smart_dashes():
    "`--flag` stays two hyphens through SmartQuotes (docutils' here, Sphinx's in the build); ` -- ` still is a dash."
    from docutils.core import publish_string
    from docutils.readers.standalone import Reader

    class R(Reader):
        def get_transforms(self): return super().get_transforms() + [bd._keep_flags()]
    src = 'Run attattr-attr --model m --n_steps 3 -- or "q" a--b.\n\n:param x: --flag first\n'
    html = publish_string(src, reader=R(), writer_name='html5', settings_overrides=dict(smart_quotes=True)).decode()
    assert '--model m --n_steps 3 \u2013 or \u201cq\u201d a\u2013b.' in html and '<p>--flag first</p>' in html, html


def test_site_config_offline(monkeypatch, tmp_path):
    "MathJax from the site itself (no CDN); a clear error without MathJax or another requirement."
    cfg = bd.book_config()['sphinx']['config']
    assert not re.match(r'^([a-z]+:)?//', cfg['mathjax_path']) and cfg['mathjax_path'].endswith(bd.MATHJAX_ENTRY)
    monkeypatch.setenv(bd.MATHJAX_ENV, str(tmp_path))
    with pytest.raises(SystemExit, match='holds no tex-chtml.js'): bd.mathjax_dir()
    monkeypatch.delenv(bd.MATHJAX_ENV)
    monkeypatch.setattr(bd, 'MATHJAX_DIST', 'attattr-no-such-distribution')
    with pytest.raises(SystemExit, match=re.escape(f'pip install "{bd.MATHJAX_REQ}"')): bd.check_requirements()
    monkeypatch.setattr(bd, 'REQUIREMENTS', {'attattr_no_such_module': 'attattr-no-such-package'})
    with pytest.raises(SystemExit, match='missing attattr-no-such-package'): bd.check_requirements()


def _nb(path, cells):
    path.write_text(json.dumps(dict(cells=cells, metadata={}, nbformat=4, nbformat_minor=5)))


def _code(src, outputs=()): return dict(cell_type='code', source=src, metadata={}, outputs=list(outputs),
                                        execution_count=None)
def _md(src): return dict(cell_type='markdown', source=src, metadata={})


def test_toc_order_needs_no_list(tmp_path):
    "index first, module notebooks by number, then the other notebooks; `_`-notebooks left out, as in nbdev."
    _nb(tmp_path/'index.ipynb', [_md('# x')])
    for name, exp in [('10_b', 'b'), ('02_a', 'a'), ('20_tutorial_mnli', None), ('21_reproduction', None),
                      ('_scratch', 'z')]:
        _nb(tmp_path/f'{name}.ipynb', [_code(f'#| default_exp {exp}' if exp else 'x = 1'), _md(f'# {name}')])
    index, mods, guides = bd.toc_parts(tmp_path)
    assert index.name == 'index.ipynb'
    assert [p.stem for p in mods] == ['02_a', '10_b']
    assert [p.stem for p in guides] == ['20_tutorial_mnli', '21_reproduction']


def test_staged_notebook_is_clean(tmp_path):
    "nbdev's processors: hidden cells go, directive lines go, Quarto options become tags, outputs stay."
    png = dict(output_type='display_data', metadata={}, data={'image/png': 'iVBORw0KGgo=', 'text/plain': 'fig'})
    _nb(tmp_path/'03_m.ipynb', [
        _code('#| default_exp testing'), _md('# Test fixtures\n\n> What it does.'),
        _code('#| export\ndef tiny_config():\n    "One line."\n    return 1'),
        _code('#| hide\nsecret_hidden_cell()'),
        _code('#| echo: false\nplot()', [png]),
        _code('tiny_config()', [dict(output_type='execute_result', metadata={}, execution_count=1,
                                     data={'text/plain': '1'})])])
    bd.stage_notebook(tmp_path/'03_m.ipynb', tmp_path/'out.ipynb', tmp_path)
    nb = json.loads((tmp_path/'out.ipynb').read_text())
    src = [''.join(c['source']) for c in nb['cells']]
    assert not any('#|' in s for s in src), src
    assert not any('secret_hidden_cell' in s for s in src)
    code = [c for c in nb['cells'] if c['cell_type'] == 'code']
    assert [''.join(c['source']).splitlines()[0] for c in code] == ['def tiny_config():', 'plot()',
                                                                   'tiny_config()']
    assert 'hide-input' in code[0]['metadata']['tags']  # exported source folded (its show_doc entry is shown)
    doc = [s for s in src if s.startswith('## tiny_config')]  # nbdev's show_doc of attattr.testing.tiny_config,
    assert doc and 'def tiny_config(' in doc[0]                # a level below `# Test fixtures`, without running anything
    assert code[1]['metadata']['tags'] == ['remove-input'] and code[1]['outputs'][0]['data']['image/png']
    assert ''.join(code[2]['outputs'][0]['data']['text/plain']) == '1'
    assert nb['metadata']['language_info']['pygments_lexer'] == 'ipython3'


def test_quarto_yml_is_valid():
    "nbs/_quarto.yml stays a valid nbdev-3 Quarto website config for those who use Quarto."
    import yaml
    q = yaml.safe_load((ROOT/'nbs'/'_quarto.yml').read_text())
    assert q['project']['type'] == 'website'
    assert q['format']['html'] and 'nbdev.yml' in q['metadata-files']


# ---------------------------------------------------------------- the built site
def test_build_has_no_broken_content(site):
    out, rep = site
    assert rep['ok'], f"status {rep['status']}; broken: {rep['warnings']['broken']}\n{rep['error'][-3000:]}"
    assert not rep['warnings']['broken']


def test_every_notebook_is_a_page(site):
    out, rep = site
    assert len(rep['notebooks_before']) >= 2
    for name in rep['notebooks_before']:
        if not (ROOT/'nbs'/name).exists(): continue  # removed while the site was building
        assert (out/name.replace('.ipynb', '.html')).is_file(), f'{name} has no page'


def test_sidebar_order(site):
    "The navigation: index, the module notebooks in order, the other notebooks, then the API reference."
    out, rep = site
    st = rep['staged']
    want = [Path(n).stem + '.html' for n in st['modules'] + st['guides']] + [f'{a}.html' for a in st['api']]
    nav = [h.split('#')[0] for h in Page(out/'index.html').nav]
    got = [h for h in dict.fromkeys(nav) if h in want]
    assert got == want


def _public(mod):
    m = importlib.import_module(mod)
    return [n for n in getattr(m, '__all__', []) if inspect.isfunction(getattr(m, n, None))
            or inspect.isclass(getattr(m, n, None)) or callable(getattr(m, n, None))]


def test_api_reference(site):
    "A page per module with every public function and class (autodoc), parameters from the docments comments."
    out, rep = site
    for name in ('attribution.attribute', 'tree.build_tree', 'models.load_model'):
        mod, fn = name.split('.')
        if not (ROOT/'attattr'/f'{mod}.py').exists(): continue
        assert f'attattr.{name}' in Page(out/'api'/f'{mod}.html').ids, f'{name} missing from the API reference'
    for mod in bd.api_modules():
        short = mod.split('.', 1)[1]
        if f'api/{short}' not in rep['staged']['api']: continue  # module added while the site was building
        page = Page(out/'api'/f'{short}.html')
        missing = [n for n in _public(mod) if f'{mod}.{n}' not in page.ids]
        assert not missing, f'{mod}: not in its API page: {missing}'


def words(s): return ' '.join(re.sub(r'\W+', ' ', s).split())  # markup aside: backticks, quotes, line breaks


def test_attribute_entry_whole(site):
    "`attribute`'s docments comments whole, on its API entry and on its notebook page's show_doc entry."
    out, rep = site
    from attattr.attribution import attribute
    api = Page(out/'api'/'attribution.html')
    entry = words(api.dd['attattr.attribution.attribute'])
    shown = words(' '.join(Page(out/'07_attribution.html').showdoc))
    docs = {p: d for p, d in bd.docments_whole(attribute).items() if d and p != 'return'}
    assert '\n' in docs['inputs'] and '\n' in docs['baselines']  # the comments that continue on a second line
    for p, d in docs.items():
        assert words(d) in entry, f'attribute({p}=...): its docments comment is not whole on the API page'
        assert words(d) in shown, f'attribute({p}=...): its docments comment is not whole on the notebook page'


def test_constants_whole(site):
    "Every public constant's API entry holds its own whole comment and nothing else (none without a comment of its own)."
    out, rep = site
    for mod in bd.api_modules():
        short = mod.split('.', 1)[1]
        if f'api/{short}' not in rep['staged']['api']: continue
        m = importlib.import_module(mod)
        docs = bd.constant_comments(Path(m.__file__).read_text(encoding='utf-8'))
        page = Page(out/'api'/f'{short}.html')
        for n in getattr(m, '__all__', []):
            if f'{mod}.{n}' not in page.dd or callable(getattr(m, n, None)): continue
            got = words(page.dd[f'{mod}.{n}'])
            assert got == words(docs.get(n, '')), f'{mod}.{n}: {got!r}, its comment: {docs.get(n)!r}'


def test_flags_keep_two_hyphens(site):
    "`--flags` stay two ASCII hyphens on every page (no smart en dashes: copied commands work)."
    out, rep = site
    flags = 0
    for page in out.rglob('*.html'):
        text = ''.join(Page(page).text)
        bad = re.findall(r'(?<![\w\u2013\u2014-])[\u2013\u2014][a-z_]{2,}', text)
        assert not bad, f'{page.relative_to(out)}: flags typeset as dashes: {bad[:5]}'
        flags += len(re.findall(r'(?<![\w-])--[a-z_]{2,}', text))
    assert flags, 'no --flag on any page'


def test_math_served_by_the_site(site):
    "Pages with formulas load MathJax from the site itself (its fonts too), no page loads it from elsewhere."
    out, rep = site
    pages = [p for p in out.rglob('*.html') if 'class="math' in p.read_text(encoding='utf-8')]
    assert pages, 'no page with a formula'
    for page in out.rglob('*.html'):
        ext = [s for s in Page(page).scripts if not is_local(s) and re.search('mathjax|katex', s, re.I)]
        assert not ext, f'{page.relative_to(out)} loads math from elsewhere: {ext}'
    for page in pages:
        mj = [s for s in Page(page).scripts if is_local(s) and s.split('?')[0].endswith(bd.MATHJAX_ENTRY)]
        assert mj and local_file(page, mj[0]).is_file(), f'{page.relative_to(out)}: no MathJax from the site: {mj}'
    fonts = list((out/'_static'/bd.MATHJAX_STATIC).rglob('MathJax_Main-Regular.woff'))
    assert fonts, 'the MathJax fonts are not in the site'


def test_images_exist(site):
    "Every image a page shows is in the site, and every figure a notebook holds is on its page."
    out, rep = site
    n_imgs = 0
    for page in out.rglob('*.html'):
        p = Page(page)
        for ref in p.imgs:
            if is_local(ref):
                assert local_file(page, ref).is_file(), f'{page.name}: missing image {ref}'
                n_imgs += 1
    assert n_imgs, 'no images at all'
    for nb in bd.doc_notebooks():
        if not (out/f'{nb.stem}.html').exists(): continue
        staged = out.parent/f'{nb.stem}.staged.ipynb'
        bd.stage_notebook(nb, staged, out.parent/'assets')
        cells = json.loads(staged.read_text())['cells']
        want = sum(1 for c in cells if c['cell_type'] == 'code' and 'remove-output' not in c['metadata'].get('tags', [])
                   and 'remove-cell' not in c['metadata'].get('tags', [])
                   for o in c.get('outputs', []) if {'image/png', 'image/svg+xml', 'image/jpeg'} & set(o.get('data', {})))
        got = sum(1 for s in Page(out/f'{nb.stem}.html').imgs if '_images/' in s)
        assert got >= want, f'{nb.name}: {want} figures in the notebook, {got} on the page'


def test_no_directive_noise(site):
    "No `#| export`/`#| hide` lines and no hidden cells' code on the pages."
    out, rep = site
    for nb in bd.doc_notebooks():
        page = out/f'{nb.stem}.html'
        if not page.exists(): continue
        text = ''.join(Page(page).text)
        assert not re.search(r'^\s*#\|', text, re.M), f'{page.name} shows nbdev directives'
        cells = json.loads(nb.read_text(encoding='utf-8'))['cells']
        src = lambda c: ''.join(c.get('source', ''))
        hidden = [src(c) for c in cells if c['cell_type'] == 'code' and re.match(r'\s*#\|\s*hide\s*$', src(c), re.M)]
        shown = '\n'.join(src(c) for c in cells if src(c) not in hidden)
        for h in hidden:
            for line in h.splitlines():
                if len(line.strip()) > 25 and not line.lstrip().startswith('#') and line not in shown:
                    assert line.strip() not in text, f'{page.name} shows a hidden cell: {line.strip()}'


# ---------------------------------------------------------------- links from the prose to the API reference
def test_link_api():
    "Package names in backticks become `py:obj` roles; code blocks, headings, links and unknown names are left alone."
    names = {'top_interactions': 'attattr.attribution.top_interactions', 'Attribution': 'attattr.attribution.Attribution',
             'CLS': 'attattr.x.CLS', '': ('attattr.tree',)}
    md = ('See `attattr.attribution.attribute`, `top_interactions()`, `Attribution.pred_label`, `attattr.tree`, `CLS`, '
          '`attribute(model)`, `attattr.tree.no_such_name`, [`top_interactions`](x.md) and `nope`.\n'
          '## `top_interactions`\n```python\n`top_interactions`\n```\n')
    got = bd.link_api(md, names)
    assert got.splitlines()[0] == (
        'See {py:obj}`attattr.attribution.attribute`, {py:obj}`top_interactions() <attattr.attribution.top_interactions>`, '
        '{py:obj}`Attribution.pred_label <attattr.attribution.Attribution.pred_label>`, {py:mod}`attattr.tree`, `CLS`, '
        '`attribute(model)`, `attattr.tree.no_such_name`, [`top_interactions`](x.md) and `nope`.')
    assert got.splitlines()[1:] == md.splitlines()[1:]
    assert bd.link_api('`tree.build_tree`', names) == '{py:obj}`tree.build_tree <attattr.tree.build_tree>`'
    assert bd.link_api('[see `top_interactions` here](x.md) `top_interactions`', names) == \
        '[see `top_interactions` here](x.md) {py:obj}`top_interactions <attattr.attribution.top_interactions>`'
    assert bd.api_names()['attribute'] == 'attattr.attribution.attribute'


def test_prose_links_to_api(site):
    "The pages link the API entries their prose names: the landing page and the tutorial at least."
    out, rep = site
    for page, want in [('index.html', 'api/attribution.html#attattr.attribution.attribute'),
                       ('20_tutorial_mnli.html', 'api/attribution.html#attattr.attribution.attribute')]:
        if not (out/page).exists(): continue
        hrefs = re.findall(r'href="([^"]+)"', (out/page).read_text(encoding='utf-8'))
        assert want in hrefs, f'{page}: no link to {want}'
        for h in {h.split('#')[0] for h in hrefs if h.startswith('api/')}:
            assert (out/h).is_file(), f'{page}: link to a missing API page {h}'


# ---------------------------------------------------------------- the landing page and the README
def test_landing_page(site):
    "The landing page opens with a figure (drawn by a cell from the shipped checkpoint), then the start-here links."
    out, rep = site
    html = (out/'index.html').read_text(encoding='utf-8')
    main = html[html.index('<main'):]
    img, start = main.find('_images/'), main.find('id="start-here"')
    assert 0 <= img < start, 'the landing page does not open with a figure before "Start here"'
    assert (out/re.search(r'src="(_images/[^"]+)"', main).group(1)).is_file()
    links = re.findall(r'href="([^"#]+)[^"]*"', main[start:start + 4000])
    for want in ('20_tutorial_mnli.html', '22_causal_lm.html', 'api/attribution.html', '14_cli.html'):
        if (ROOT/'nbs'/want.replace('.html', '.ipynb')).exists() or want.startswith('api/'):
            assert want in links, f'"Start here" has no link to {want}: {links}'
            assert (out/want).is_file(), f'"Start here" links to a page that was not built: {want}'


def readme_snippet() -> tuple[str, str]:
    "(code, printed output) of the README's Python example."
    txt = (ROOT/'README.md').read_text(encoding='utf-8')
    m = re.search(r'## In Python\s+```python\n(.*?)\n```\s+```\n(.*?)\n```', txt, re.S)
    assert m, 'README.md has no "## In Python" example with its output'
    return m.group(1), m.group(2)


def test_readme_snippet_runs_from_the_root():
    "The README's Python example runs as printed from the root of the clone and prints what the README shows."
    code, shown = readme_snippet()
    assert '../' not in code, 'the README example uses paths relative to nbs/'
    env = dict(os.environ, OMP_NUM_THREADS='1', HF_HUB_OFFLINE='1', MPLBACKEND='Agg')
    r = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f'the README example fails from the repository root:\n{r.stderr[-3000:]}'
    got, want = r.stdout.strip().splitlines(), shown.strip().splitlines()
    assert got[0] == want[0], (got, want)  # the tokens
    assert got[1].split(', F=')[0] == want[1].split(', F=')[0] and got[1].endswith(want[1].split('→')[-1]), (got, want)
    assert [l.rsplit(' ', 1)[0] for l in got[2:]] == [l.rsplit(' ', 1)[0] for l in want[2:]], (got, want)


def test_readme_links_exist():
    "Every local link of the README points at a file of the repository."
    txt = (ROOT/'README.md').read_text(encoding='utf-8')
    for ref in re.findall(r'\]\(([^)\s]+)\)', txt):
        if not is_local(ref): continue
        assert (ROOT/unquote(urlsplit(ref).path)).exists(), f'README.md links to a missing file: {ref}'


# ---------------------------------------------------------------- no page shows the machine it was built on
MACHINE_PATH = re.compile(
    r'(?<![\w.~-])/(?:work|tmp|home|root|Users|private|var/folders|mnt|opt|scratch)/[^\s"\'<>]*'  # absolute folders
    r'|[^\s"\'<>]*(?:site-packages|dist-packages)/[^\s"\'<>]*'  # an installed environment
    r'|/[^\s"\'<>]*\.venv\b[^\s"\'<>]*'  # an absolute path into a virtual environment
    r'|(?<![\w.])\.\./\.\./[^\s"\'<>]*'  # a folder above the repository, from nbs/
    r'|\b[A-Za-z]:\\\\Users\\\\[^\s"\'<>]*')  # a Windows home


def machine_paths(text: str) -> list[str]:
    "The paths of a build machine (or of folders outside the repository) in a page's text."
    extra = {str(ROOT), str(ROOT.parent), str(Path.home())}
    hits = MACHINE_PATH.findall(text)
    for e in extra:
        if len(e) > 1: hits += re.findall(rf'(?<![\w.~/-]){re.escape(e)}(?![\w.-])[^\s"\'<>]*', text)
    return sorted(set(hits))


def test_machine_paths_pattern():
    assert machine_paths('wrote /tmp/tmpa9gefa8l/attr.json and /work/shared/data') == \
        ['/tmp/tmpa9gefa8l/attr.json', '/work/shared/data']
    assert machine_paths('bash tools/setup.sh && .venv/bin/attattr-demo; see examples/data/mnli, ../examples') == []
    assert machine_paths('/usr/lib/python3/site-packages/x.py') == ['/usr/lib/python3/site-packages/x.py']
    assert machine_paths('read ../../shared/x') == ['../../shared/x']


def test_no_machine_paths_on_pages(site):
    "No page shows a path of the machine it was built on or a folder outside the repository (text, links, images)."
    out, rep = site
    bad = {}
    for page in sorted(out.rglob('*.html')):
        p = Page(page)
        refs = [r for r in p.assets + p.imgs if r]
        hits = machine_paths(''.join(p.text) + '\n' + '\n'.join(refs))
        if hits: bad[str(page.relative_to(out))] = hits[:4]
    assert not bad, f'pages showing paths of the build machine: {bad}'
