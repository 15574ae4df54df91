"""What every benchmark result records about the machine it ran on."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """CPU count and model, memory, Python and kernel versions."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
    memory = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model.group(1) if model else None,
        "memory_mb": int(memory.group(1)) // 1024 if memory else None,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }
