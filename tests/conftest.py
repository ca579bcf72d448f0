import os, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent/'shared'
MINILM = ROOT/'examples'/'models'/'minilm-l6-nli'
MNLI = ROOT/'examples'/'data'/'mnli'
os.environ.setdefault('MPLBACKEND', 'Agg')
os.environ.setdefault('HF_HUB_OFFLINE', '1')
sys.path.insert(0, str(ROOT/'bench'))  # bench/reference.py: the reference re-implementation of the original

def need(path):
    "Skip (with the reason shown) when real data or a checkpoint is absent."
    if not Path(path).exists(): pytest.skip(f"real data not available: {path}")
    return Path(path)

@pytest.fixture(scope='session')
def minilm():
    from attattr.models import load_model
    return load_model(need(MINILM))

@pytest.fixture(scope='module')
def one_thread():
    "One torch thread for a module: on a small shared CPU, contended threads make tiny models many times slower."
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

@pytest.fixture
def full_disk_at(monkeypatch):
    "`full_disk_at(k)`: the k-th file `attattr.core` writes from now on fails with ENOSPC (a full disk) when it is synced."
    import errno
    from attattr import core
    def arm(k:int):
        real, calls = os.fsync, []
        def fsync(fd):
            calls.append(fd)
            if len(calls) == k: raise OSError(errno.ENOSPC, 'No space left on device')
            return real(fd)
        monkeypatch.setattr(core.os, 'fsync', fsync)
    return arm
