"""The built site in a real browser: headless Chromium (Debian's `chromium`; CI installs it) opens the index page and
the tutorial page from a local `python -m http.server`; the screenshots are not blank, every local asset the pages
reference is served (no 404), and the tutorial's figures are on its page. Skipped, with the reason, without chromium.
The screenshots are kept in the test's temp folder (`<basetemp>/browser/*.png`) for a look."""
import re, shutil, socket, subprocess, sys, time, urllib.error, urllib.request
from urllib.parse import urljoin
from pathlib import Path

import pytest

from test_docs import Page, build_site, is_local

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
TUTORIAL = ROOT/'nbs'/'20_tutorial_mnli.ipynb'  # the worked MNLI tutorial, once written
FALLBACK = ROOT/'nbs'/'07_attribution.ipynb'  # until then: the attribution notebook (it has a figure)
WINDOW = '1280,2000'
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


def screenshot(url: str, png: Path, profile: Path):
    "Headless Chromium's screenshot of `url` into `png`."
    cmd = [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--disable-dev-shm-usage', f'--user-data-dir={profile}', f'--screenshot={png}', f'--window-size={WINDOW}',
           url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=CHROME_TIMEOUT_S)
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
