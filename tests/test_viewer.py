"""The standalone attribution viewer (`attattr.viewer`) in headless Chromium (Debian's `chromium`), offline: the page
renders with no script error, a click on a head changes the edge view, the tree slider changes the tree, paging and
the token filter work, and a 512-token, 12 × 12-head example stays under the size budget and renders. A probe script,
added to a copy of the page by the test only, clicks and reads the DOM; `--dump-dom` hands back its report. The
`attattr-view` console script is checked without a browser. Browser checks are skipped, with the reason, without
chromium."""
import html, json, re, shutil, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

from attattr.formats import write_layers_json, write_tokens_json
from attattr.viewer import TOP_K, viewer_data, viewer_html

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
OFFLINE = '--host-resolver-rules=MAP * ~NOTFOUND'  # no host resolves: anything the page tried to fetch would fail
BUDGET_MS = 20000  # virtual time the page (and the probe) get before the DOM is read
CHROME_TIMEOUT_S = 120
SIZE_BUDGET = 3_000_000  # bytes: a 512-token, 12-layer, 12-head page stays "a few MB at most"
EVIL = '</script><b id="evil">x</b>'  # a token that must stay text

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason='chromium is not installed (apt-get install chromium): '
                                                             'the browser checks of the viewer are skipped')

CATCH = "<script>window.__errors = []; addEventListener('error', e => __errors.push(String(e.message)));</script>"

# The probe: runs after the viewer's script, clicks through the page, and leaves a JSON report in <pre id="probe">.
PROBE = r"""<script>
(() => {
  const R = {errors: window.__errors}, q = s => [...document.querySelectorAll(s)], $ = id => document.getElementById(id);
  const view = () => ({
    head: $('head-title').textContent, page: $('page-label').textContent,
    attr: q('#panel-attr .edge-table tr').map(r => r.textContent), att: q('#panel-att .edge-table tr').map(r => r.textContent),
    lines: q('#panel-attr svg line').length, labels: q('#panel-attr svg text.tok').length,
    tree: $('tree-info').textContent, nodes: q('#tree rect').length, tau: $('threshold-value').textContent});
  try {
    R.cells = q('#grid button.cell').length;
    R.selected = q('#grid button.selected').map(b => [+b.dataset.layer, +b.dataset.head]);
    R.tokens = q('#tokens .token').map(s => s.textContent);
    R.first = view();
    const other = q('#grid button.cell').find(b => !b.classList.contains('selected'));
    other.click();
    R.clicked = [+other.dataset.layer, +other.dataset.head];
    R.after_click = view();
    $('next').click();
    R.next_page = view();
    const s = $('threshold');
    s.value = s.min; s.dispatchEvent(new Event('input'));
    R.tau_low = view();
    s.value = s.max; s.dispatchEvent(new Event('input'));
    R.tau_high = view();
    q('#tokens .token')[2].click();
    R.filtered = view();
  } catch (e) { R.errors.push('probe: ' + e); }
  document.body.append(Object.assign(document.createElement('pre'), {id: 'probe', textContent: JSON.stringify(R)}));
})();
</script>"""


def probed(page: str) -> str:
    "A copy of the page with the error catcher first in <head> and the probe last in <body>."
    head, body = page.index('<head>') + len('<head>'), page.rindex('</body>')
    return page[:head] + CATCH + page[head:body] + PROBE + page[body:]


def run_probe(page: str, tmp: Path) -> dict:
    "Open the probed page in headless Chromium (offline) and return the probe's report."
    f = tmp/'page.html'
    f.write_text(probed(page), encoding='utf-8')
    cmd = [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage',
           '--disable-background-networking', '--disable-component-update', '--disable-sync', OFFLINE,
           f'--user-data-dir={tmp/"profile"}', f'--virtual-time-budget={BUDGET_MS}', '--dump-dom', f.as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=CHROME_TIMEOUT_S)
    m = re.search(r'<pre id="probe">(.*?)</pre>', r.stdout, re.S)
    assert m, f'no probe report in the DOM (status {r.returncode}):\n{r.stderr[-2000:]}'
    return json.loads(html.unescape(m.group(1)))


def example(n, L, H, seed=0):
    "Random attributions and attention probabilities (L, H, n, n), float32, and n tokens (one of them `EVIL`)."
    rng = np.random.default_rng(seed)
    attr = rng.standard_normal((L, H, n, n), dtype=np.float32)
    att = rng.random((L, H, n, n), dtype=np.float32)
    att /= att.sum(-1, keepdims=True)
    tokens = ['[CLS]'] + [f'w{i}' for i in range(1, n - 1)] + ['[SEP]']
    tokens[3] = EVIL
    return attr, att, tokens


def test_page_is_self_contained():
    attr, att, tokens = example(8, 2, 3)
    page = viewer_html(viewer_data(attr, tokens, att, top_k=10))
    assert not re.findall(r'''\s(?:src|href)=["']|@import|url\((?!#)|https?://(?!www\.w3\.org/2000/svg)''', page)
    assert page.count('</script>') == 2  # the data element and the script: the token cannot close either
    assert EVIL not in page


@needs_chromium
def test_renders_and_clicks(tmp_path):
    L, H, n = 3, 4, 12
    attr, att, tokens = example(n, L, H)
    r = run_probe(viewer_html(viewer_data(attr, tokens, att, top_k=30)), tmp_path)
    assert r['errors'] == [], r['errors']
    assert r['cells'] == L*H
    best = np.unravel_index(attr.max((2, 3)).argmax(), (L, H))  # the head first shown: the largest attribution
    assert r['selected'] == [list(map(int, best))]
    assert r['tokens'] == tokens  # the markup-looking token is shown as text
    first = r['first']
    assert first['head'] == f'Layer {best[0]}, head {best[1]}'
    assert len(first['attr']) == 1 + 20 and len(first['att']) == 1 + 20  # header + one page of each ranking
    assert first['labels'] == 2*n  # n ≤ FULL_TOKENS: every token on both sides
    assert first['lines'] == 20
    # a click on another head shows that head's edges
    l, h = r['clicked']
    after = r['after_click']
    assert after['head'] == f'Layer {l}, head {h}' != first['head']
    assert after['attr'] != first['attr'] and after['att'] != first['att']
    top = np.unravel_index(np.abs(attr[l, h]).argmax(), (n, n))
    assert after['attr'][1].startswith(f'1{tokens[top[0]]} {top[0]}{tokens[top[1]]} {top[1]}')
    # the next page: edges 21–30 of the 30 kept
    assert r['next_page']['page'].startswith('edges 21–30 of the 30 kept') and len(r['next_page']['attr']) == 11
    # the slider changes the tree
    lo, hi = r['tau_low'], r['tau_high']
    assert (lo['tau'], hi['tau']) == ('0.05', '0.95')
    assert lo['tree'] != hi['tree'] and lo['nodes'] > hi['nodes'] >= 1
    # a token filter keeps only the edges of that token
    assert all(f'{tokens[2]} 2' in row for row in r['filtered']['attr'][1:])


@needs_chromium
def test_no_attention_and_some_layers(tmp_path):
    "Attributions of one layer and no attention: the page says so instead of failing."
    attr, _, tokens = example(6, 2, 2)
    r = run_probe(viewer_html(viewer_data(attr[1:], tokens, None, layers=[1], top_k=8)), tmp_path)
    assert r['errors'] == [], r['errors']
    assert r['cells'] == 2*2 and r['selected'][0][0] == 1  # layers 0 and 1, the first shown of layer 1
    assert r['first']['tree'] == 'the tree needs attributions of every layer'
    assert r['first']['att'] == [] and len(r['first']['attr']) == 1 + 8
    assert r['clicked'] == [0, 0] and r['after_click']['attr'] == []  # layer 0 has no attribution


@needs_chromium
@pytest.mark.slow
def test_512_tokens(tmp_path):
    "A 512-token example of a 12-layer, 12-head model: under the size budget, renders, and shows only the page's tokens."
    n, L, H = 512, 12, 12
    attr, att, tokens = example(n, L, H, seed=1)
    page = viewer_html(viewer_data(attr, tokens, att))
    del attr, att
    assert len(page.encode('utf-8')) < SIZE_BUDGET, f'{len(page.encode()) / 1e6:.2f} MB'
    r = run_probe(page, tmp_path)
    assert r['errors'] == [], r['errors']
    assert r['cells'] == L*H and len(r['tokens']) == n
    first = r['first']
    assert first['page'].startswith(f'edges 1–20 of the {TOP_K} kept')
    assert 0 < first['labels'] <= 2*2*20  # only the ends of the page's 20 edges, on both sides
    assert r['after_click']['head'] != first['head']
    assert r['tau_low']['nodes'] > r['tau_high']['nodes']


def test_cli(tmp_path):
    "`attattr-view` writes the page from the original's files; bad input is one line on stderr and exit status 2."
    attr, att, tokens = example(6, 2, 2)
    write_layers_json(attr, tmp_path/'attr_zero_base_exp3.json')
    write_layers_json(att, tmp_path/'att_score_zero_base_exp3.json')
    write_tokens_json([dict(index=3, tokens=tokens, pred='neutral', golden='neutral', pred_logits=[[0., 0., 1.]])],
                      tmp_path/'tokens_and_pred_10.json')
    run = lambda *a: subprocess.run([sys.executable, '-c', 'from attattr.core import attattr_view; attattr_view()', *a],
                                    capture_output=True, text=True, cwd=tmp_path, timeout=300)
    r = run('--attr_file', 'attr_zero_base_exp3.json', '--tokens_file', 'tokens_and_pred_10.json',
            '--att_file', 'att_score_zero_base_exp3.json', '--top_k', '5')
    assert r.returncode == 0, r.stderr
    out = tmp_path/'view_exp3.html'
    assert r.stdout.strip() == str(Path('view_exp3.html')) and out.is_file()
    data = json.loads(re.search(r'id="attattr-data">(.*?)</script>', out.read_text(encoding='utf-8'), re.S).group(1))
    assert (data['title'], data['k'], data['tokens']) == ('example 3', 5, tokens)
    r = run('--attr_file', 'attr_zero_base_exp3.json', '--tokens_file', 'tokens_and_pred_10.json', '--threshold', '2')
    assert r.returncode == 2
    assert r.stderr.strip() == 'attattr-view: error: --threshold: expected a value in [0, 1], got 2.0'
    assert sorted(p.name for p in tmp_path.glob('*.html')) == ['view_exp3.html']  # nothing else was written
