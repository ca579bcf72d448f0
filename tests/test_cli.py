"The console layer: every script answers --help and flag errors fast and without torch, one spelling per flag, --threads."
import resource, subprocess, sys, time
from pathlib import Path
import pytest
from attattr.core import CONSOLE_SCRIPTS, cli_parser, script_specs

ROOT = Path(__file__).resolve().parents[1]
HELP_SECONDS = 1.0  # the most CPU time a script's --help may take, start of Python included (about 0.15 s measured)
HELP_WALL = 5.0  # and wall clock, generous: on a busy shared machine wall time says little (0.12-0.14 s when quiet)

def call(prog, *args):
    "Run console script `prog`'s entry point in a fresh Python; (exit status, stdout, stderr, heavy modules imported, (CPU s, wall s))."
    code = (f"import sys, time; sys.argv = [{prog!r}, *{list(args)!r}]\n"
            "from attattr import core\n"
            f"try: rc = getattr(core, {prog.replace('-', '_')!r})()\n"
            "except SystemExit as e: rc = e.code\n"
            "print('\\n@@', rc, sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    t, r = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    r2 = resource.getrusage(resource.RUSAGE_CHILDREN)
    dt = (r2.ru_utime + r2.ru_stime - r.ru_utime - r.ru_stime, time.perf_counter() - t)
    out, _, tail = p.stdout.rpartition('\n@@ ')
    rc, mods = tail.split(' ', 1)
    return int(rc) if rc.lstrip('-').isdigit() else rc, out, p.stderr, eval(mods), dt

@pytest.mark.parametrize('prog', list(CONSOLE_SCRIPTS))
def test_help_fast_and_torch_free(prog):
    rc, out, err, mods, dt = call(prog, '--help')
    assert rc == 0 and mods == [] and err == '', (rc, mods, err)
    assert dt[0] < HELP_SECONDS and dt[1] < HELP_WALL, f"{prog} --help took {dt[0]:.2f} s CPU, {dt[1]:.2f} s wall"
    names = [a['dest'] for a in script_specs()[prog]['args']]
    for n in names: assert f"--{n}" in out, n  # the original's spelling, once
    assert not any(f"--{n.replace('_', '-')}" in out for n in names if '_' in n), out  # no dash spelling shown
    flat = ' '.join(out.split())
    assert '--threads N' in flat and 'the idle cores' in flat and 'at most 4' in flat

@pytest.mark.parametrize('prog', list(CONSOLE_SCRIPTS))
def test_bad_flag_one_line(prog):
    rc, out, err, mods, dt = call(prog, '--no_such_flag', '1')
    assert rc == 2 and mods == [] and err.count('\n') == 1, (rc, err)
    required = [a['dest'] for a in script_specs()[prog]['args'] if a['required']]
    want = 'the following arguments are required: --' if required else 'unrecognized arguments: --no_such_flag 1'
    assert err.startswith(f"{prog}: error: {want}"), err

def test_bad_value_and_required():
    rc, _, err, mods, _ = call('attattr-tree', '--attr_file', 'a.json', '--tokens_file', 't.json', '--threshold', 'high')
    assert (rc, mods, err.count('\n')) == (2, [], 1) and "--threshold: invalid float value: 'high'" in err, err
    rc, _, err, mods, _ = call('attattr-tree', '--attr_file', 'a.json')
    assert (rc, mods) == (2, []) and 'the following arguments are required: --tokens_file' in err, err
    usage = cli_parser('attattr-tree', script_specs()['attattr-tree']).format_usage()
    assert '--attr_file ATTR_FILE' in usage and '[--attr_file' not in usage  # required: no brackets
    assert '[--threshold THRESHOLD]' in usage

def test_dash_spelling_accepted(tmp_path):
    "fastcore's `--attr-file` still works (silently respelled): the run reaches the file check, one line naming it."
    rc, _, err, _, _ = call('attattr-tree', '--attr-file', str(tmp_path/'nope.json'), '--tokens-file=t.json')
    assert rc == 2 and err == f"attattr-tree: error: file not found: {tmp_path/'nope.json'}\n", err

def console_rc(prog, *args):
    "Exit status of `console(prog, args)` run in this process."
    from attattr.core import console
    try: return console(prog, list(map(str, args)))
    except SystemExit as e: return e.code

def test_threads(capsys, monkeypatch):
    "--threads reaches torch (after the script's module is imported); 0 is refused in one line."
    import os, torch
    n = torch.get_num_threads()
    for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'): monkeypatch.setenv(k, os.environ.get(k, '1'))  # restored afterwards
    try:
        assert console_rc('attattr-attr', '--threads', '3', '--task_name', 'imdb', '--get_att_attr') == 2
        assert torch.get_num_threads() == 3 and capsys.readouterr().err.startswith('attattr-attr: error: ')
    finally: torch.set_num_threads(n)
    rc, _, err, _, _ = call('attattr-tree', '--threads', '0', '--attr_file', 'a', '--tokens_file', 'b')
    assert rc == 2 and err == 'attattr-tree: error: --threads must be ≥ 1, got 0\n', err

def test_spec_up_to_date():
    p = subprocess.run([sys.executable, str(ROOT/'tools'/'make_cli.py'), '--check'], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr + p.stdout

@pytest.mark.parametrize('prog,args,msg', [
    ('attattr-attr', ['--target', 'foo'], "--target 'foo': expected pred, gold, a class id 0..1"),
    ('attattr-attr', ['--n_steps', '0'], "--n_steps must be at least 1, got 0"),
    ('attattr-attr', ['--n_steps', '2.5'], "--n_steps must be a whole number of points or 'auto', got '2.5'"),
    ('attattr-attr', ['--n_steps', '8', '--tol', '0.01'], "--tol needs --n_steps auto"),
    ('attattr-demo', ['--threshold', '1.5'], "--threshold: expected a value in [0, 1], got 1.5"),
])
def test_bad_values_before_work(tmp_path, capsys, prog, args, msg):
    "Bad values are one line, exit 2, before a model is loaded (no model given: the check comes first)."
    (tmp_path/'d').mkdir(); (tmp_path/'d'/'dev.tsv').write_text('sentence\tlabel\na b\t0\n')
    common = ['--task_name', 'sst-2', '--data_dir', str(tmp_path/'d'), '--model', str(tmp_path/'no-model'),
              '--output_dir', str(tmp_path/'out'), '--get_att_attr'] if prog == 'attattr-attr' else ['--output_dir', str(tmp_path/'out')]
    assert console_rc(prog, *common, *args) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and msg in err, err
    assert not (tmp_path/'out').exists()
