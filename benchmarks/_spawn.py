"""``python -m benchmarks._spawn RESULT -- COMMAND...``: run COMMAND, write its wall seconds,
CPU seconds and peak RSS to RESULT (JSON), exit with its code.

The whole-process benchmarks start commands through this small process rather than from the
harness itself: Linux counts the memory a child inherits at ``fork`` in its peak RSS
(``ru_maxrss``), so a child forked from a harness that already holds hundreds of MB reports
that as its own peak. Forked from here, the peak is the command's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    result, separator, *command = argv
    if separator != "--" or not command:
        print(__doc__, file=sys.stderr)
        return 2
    began = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - began
    process.returncode = code = os.waitstatus_to_exitcode(status)
    Path(result).write_text(
        json.dumps(
            {
                "wall": wall,
                "cpu": usage.ru_utime + usage.ru_stime,
                "peak_rss_mb": usage.ru_maxrss / 1024,
                "returncode": code,
            }
        )
    )
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
