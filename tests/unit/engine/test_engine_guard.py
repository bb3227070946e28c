"""The engine imports neither Faust, aiokafka nor mlxtend, nor the stream's other modules."""

from __future__ import annotations

import subprocess
import sys


def test_engine_imports_no_stream_framework():
    code = (
        "import sys, stream.engine, stream.engine.engine\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('faust', 'aiokafka', 'mlxtend', 'mode')]\n"
        "bad += [m for m in sys.modules if m.startswith('stream.') and not m.startswith('stream.engine')"
        " and m != 'stream.errors']\n"
        "print(','.join(bad))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == ""
