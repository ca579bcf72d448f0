"""The built site in a real browser: headless Chromium (Debian's `chromium`; CI installs it) opens the index page and
the tutorial page from a local `python -m http.server`, with no network beyond it (every other host name fails to
resolve); the screenshots are not blank, every local asset the pages reference is served (no 404), the tutorial's
figures are on its page, and a page's formulas are typeset (MathJax from the site itself). Skipped, with the reason,
without chromium. The screenshots are kept in the test's temp folder (`<basetemp>/browser/*.png`) for a look."""
import re, shutil, socket, subprocess, sys, time, urllib.error, urllib.request
from html.parser import HTMLParser
from urllib.parse import urljoin
from pathlib import Path

import pytest

from test_docs import Page, build_site, is_local

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
TUTORIAL = ROOT/'nbs'/'20_tutorial_mnli.ipynb'  # the worked MNLI tutorial, once written
FALLBACK = ROOT/'nbs'/'07_attribution.ipynb'  # until then: the attribution notebook (it has a figure)
MATH_PAGE = ROOT/'nbs'/'07_attribution.ipynb'  # its page opens with display formulas
WINDOW = '1280,2000'
OFFLINE = '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'  # no host but the local server: a CDN fails
MATH_BUDGET_MS = 20000  # virtual time the page gets to load MathJax and typeset before its DOM is read
MIN_PIXEL_STD = 8.0  # a rendered page (text, code, figures) varies far more than this; a blank one not at all
CHROME_TIMEOUT_S = 120

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason='chromium is not installed (apt-get install chromium): '
                                                         'the browser check of the docs is skipped')


def tutorial_page() -> str:
    "The page of the tutorial notebook (the first `*tutorial*` notebook), else of 04_attribution."
    nbs = sorted(p for p in (ROOT/'nbs').glob('*tutorial*.ipynb') if not p.name.startswith(('_', '.')))
    nb = TUTORIAL if TUTORIAL.exists() else nbs[0] if nbs else FALLBACK
    return nb.stem + '.html'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    "The built site served on 127.0.0.1 (a free port): (site folder, base URL)."
    out, rep = build_site(tmp_path_factory)
    port = free_port()
    proc = subprocess.Popen([sys.executable, '-m', 'http.server', str(port), '--bind', '127.0.0.1',
                             '--directory', str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f'http://127.0.0.1:{port}/'
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError): time.sleep(.1)
        else: pytest.fail('the local http.server did not start')
        yield out, url
    finally:
        proc.terminate()
        proc.wait(10)


def chromium(profile: Path, *args) -> subprocess.CompletedProcess:
    "Headless Chromium, offline but for 127.0.0.1."
    cmd = [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--disable-dev-shm-usage', OFFLINE, f'--user-data-dir={profile}', f'--window-size={WINDOW}', *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=CHROME_TIMEOUT_S)


def screenshot(url: str, png: Path, profile: Path, *args):
    "Headless Chromium's screenshot of `url` into `png`."
    r = chromium(profile, f'--screenshot={png}', *args, url)
    assert png.is_file(), f'chromium wrote no screenshot (status {r.returncode}):\n{r.stderr[-2000:]}'


def pixel_std(png: Path) -> float:
    import numpy as np
    from PIL import Image
    return float(np.asarray(Image.open(png).convert('L'), dtype=np.float32).std())


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r: return r.status
    except urllib.error.HTTPError as e: return e.code


@pytest.mark.parametrize('page', ['index.html', tutorial_page()])
def test_page_in_browser(server, page, tmp_path_factory):
    out, url = server
    assert (out/page).is_file(), f'{page} was not built'
    shots = tmp_path_factory.getbasetemp()/'browser'
    shots.mkdir(exist_ok=True)
    png = shots/page.replace('.html', '.png')
    screenshot(url + page, png, tmp_path_factory.mktemp('chromium-profile'))
    std = pixel_std(png)
    assert std > MIN_PIXEL_STD, f'{page}: the screenshot looks blank (pixel std {std:.1f}): {png}'

    p = Page(out/page)
    assets = sorted(set(re.sub(r'[?#].*$', '', a) for a in p.assets if is_local(a)))
    assert assets, f'{page} references no local assets at all'
    missing = [a for a in assets if status(urljoin(url + page, a)) != 200]
    assert not missing, f'{page}: not served: {missing}'
    if page != 'index.html':
        figs = [s for s in p.imgs if '_images/' in s]
        assert figs, f'{page}: no figures'


class MathDom(HTMLParser):
    "A page's DOM after its scripts ran: its formulas (`.math` elements) as [typeset (holds MathJax output)?, raw text]."
    VOID = {'area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr'}

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.formulas, self._depth, self._mml = [], 0, 0  # depth in the current formula, in its MathML for readers
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID: return
        if self._depth:
            self._depth += 1
            if tag == 'mjx-container': self.formulas[-1][0] = True
            if tag == 'mjx-assistive-mml' or self._mml: self._mml += 1
        elif 'math' in (dict(attrs).get('class') or '').split():
            self._depth = 1
            self.formulas.append([False, ''])

    def handle_endtag(self, tag):
        if tag in self.VOID or not self._depth: return
        self._depth -= 1
        if self._mml: self._mml -= 1

    def handle_data(self, data):
        if self._depth and not self._mml: self.formulas[-1][1] += data


def test_math_renders_offline(server, tmp_path_factory):
    "A page's display formulas are typeset by MathJax from the site, with no network: no raw TeX left on the page."
    out, url = server
    page = MATH_PAGE.stem + '.html'
    if not MATH_PAGE.exists() or not (out/page).exists():  # the notebook renamed: any page with a display formula
        page = next(str(p.relative_to(out)) for p in sorted(out.rglob('*.html'))
                    if 'class="math notranslate nohighlight"' in p.read_text(encoding='utf-8'))
    assert '\\[' in (out/page).read_text(encoding='utf-8'), f'{page}: no display formula to typeset'
    profile = tmp_path_factory.mktemp('chromium-profile')
    r = chromium(profile, f'--virtual-time-budget={MATH_BUDGET_MS}', '--dump-dom', url + page)
    dom = MathDom(r.stdout)
    assert dom.formulas, f'{page}: no formula in the DOM (status {r.returncode}):\n{r.stderr[-2000:]}'
    raw = [t.strip()[:80] for typeset, t in dom.formulas if not typeset or '\\' in t]
    assert not raw, f'{page}: {len(raw)} of {len(dom.formulas)} formulas not typeset, e.g. {raw[:3]}'
    shots = tmp_path_factory.getbasetemp()/'browser'
    shots.mkdir(exist_ok=True)
    screenshot(url + page, shots/'math.png', tmp_path_factory.mktemp('chromium-profile'),
               f'--virtual-time-budget={MATH_BUDGET_MS}')  # for a look
