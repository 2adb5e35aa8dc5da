"""What importing the kernels costs a process: no SciPy for numba's registry, LLVM's code handed back."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import json, sys
import numpy as np
from binance_cluster.kernels import indicators as K
from binance_cluster.kernels._jit import release_llvm_code

def rss_file_kb():
    for line in open('/proc/self/status'):
        if line.startswith('RssFile:'):
            return int(line.split()[1])
    return 0

x = np.arange(1, 2001, dtype=np.int64)
first = K.tick_prefix(x)                 # loads (or compiles) a kernel: numba's registries too
before = rss_file_kb()
released = release_llvm_code()
after = rss_file_kb()
again = K.tick_prefix(x)                 # runs from the pages LLVM needs, mapped back on demand
print(json.dumps({"scipy_linalg": "scipy.linalg" in sys.modules, "released": released,
                  "before_kb": before, "after_kb": after, "same": bool((first == again).all()),
                  "value": int(again[-1])}))
"""


def test_a_kernel_process_imports_no_scipy_and_gives_llvm_code_back():
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["scipy_linalg"] is False
    assert out["same"] and out["value"] == sum(range(1, 2001))
    if sys.platform.startswith("linux"):
        assert out["released"] > 10_000_000            # LLVM's machine code is tens of MB
        assert out["before_kb"] - out["after_kb"] > 10_000


def test_scipy_still_imports_after_the_kernels():
    code = ("from binance_cluster.kernels import indicators; import scipy.linalg; "
            "import numpy as np; print(float(scipy.linalg.det(np.eye(2))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1.0"
