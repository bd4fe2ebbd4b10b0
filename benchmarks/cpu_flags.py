"""The CPU a benchmark ran on: model, ISA flags that matter for its kernels, ISA caps in force.

    from cpu_flags import cpu_info  # benchmarks/ on sys.path
    cpu_info()["flags"]  # e.g. ['avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx_vnni']
"""

from __future__ import annotations

import os
import pathlib
import platform

ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni",
             "amx_tile", "amx_int8", "amx_bf16")
# Environment variables that cap the ISA a library dispatches to (an emulation of a lesser
# CPU: oneDNN in TensorFlow and PyTorch honours ONEDNN_MAX_CPU_ISA, PyTorch's ATen
# ATEN_CPU_CAPABILITY, its MKL BLAS MKL_ENABLE_INSTRUCTIONS; XNNPACK reads none: the
# benchmarks' `--litert-isa avx2` caps it instead, see litert_isa.py).
ISA_CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY",
                     "MKL_ENABLE_INSTRUCTIONS", "TF_ENABLE_ONEDNN_OPTS")


def cpu_info() -> dict:
    """The CPU model, its ISA flags of interest, core count and ISA caps in the environment."""
    model, flags = None, set()
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model is None:
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    caps = {name: os.environ[name] for name in ISA_CAP_VARIABLES if name in os.environ}
    return {
        "model": model or platform.processor() or "unknown",
        "flags": [flag for flag in ISA_FLAGS if flag in flags],
        "missing_flags": [flag for flag in ISA_FLAGS if flag not in flags],
        "cores": os.cpu_count(),
        "isa_caps": caps,
    }
