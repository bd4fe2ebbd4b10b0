"""Run LiteRT's CPU kernels as an AVX2-only x86 CPU would (no AVX-512, no VNNI) on a bigger one.

XNNPACK and ruy inside ai-edge-litert pick their kernels from cpuinfo's CPU detection, which
reads CPUID once; no environment variable caps it (unlike oneDNN's ONEDNN_MAX_CPU_ISA).
valgrind answers CPUID as a Haswell (AVX2, FMA3, F16C; no AVX-512, no VNNI), so under
valgrind cpuinfo's feature table (`cpuinfo_isa`, one bool per feature) holds a Haswell's
features. `cap_to_avx2()` reads that table once in a short valgrind run, then, in this
process and before the first interpreter exists, initialises cpuinfo and clears every
feature the Haswell table lacks. XNNPACK builds its hardware config from the cleared table
and runs its AVX2 kernels on the real silicon at full speed. What it cannot change: caches,
clock and memory stay this machine's.

    import litert_isa  # benchmarks/ on sys.path
    cap = litert_isa.cap_to_avx2()    # before any ai_edge_litert Interpreter exists
    cap["features_cleared"]           # 28 on an AVX-512 + VNNI AMD EPYC
    ...                               # create interpreters, time them
    litert_isa.xnnpack_arch_flags()   # '00000000000000ff': XNNPACK's AVX2-level ISA bits

    python benchmarks/litert_isa.py --check MODEL.tflite   # capped == valgrind's Haswell?

Needs valgrind and nm (binutils) on PATH and the library's symbol table (ai-edge-litert 2.3.0
ships it). Any of them missing is a RuntimeError naming it. The package never uses this;
`tests/test_litert_isa.py` checks it against valgrind.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import os
import pathlib
import shutil
import subprocess
import sys

LIBRARY_NAME = "libpywrap_litert_common.so"
FEATURE_TABLE = "cpuinfo_isa"
HARDWARE_CONFIG = "hardware_config"
# Bytes of XNNPACK's hardware config that hold its ISA bit set (`arch_flags`, a uint64 after
# the 8-byte header) in the XNNPACK of ai-edge-litert 2.3.0.
ARCH_FLAGS = slice(8, 16)


@functools.cache
def library() -> pathlib.Path:
    """The ai-edge-litert shared library that holds XNNPACK, ruy and cpuinfo."""
    import ai_edge_litert
    import ai_edge_litert.interpreter  # noqa: F401  (loads the library into this process)

    path = pathlib.Path(ai_edge_litert.__file__).parent / LIBRARY_NAME
    if not path.exists():
        raise RuntimeError(f"{path}: not found; this ai-edge-litert lays out its libraries "
                           "differently, so the ISA cap cannot find cpuinfo")
    return path.resolve()


@functools.cache
def symbols() -> dict[str, tuple[int, int]]:
    """Symbol name -> (offset in the library, size) from its symbol table, via `nm -S`."""
    if shutil.which("nm") is None:
        raise RuntimeError("nm (binutils) is not on PATH; the ISA cap needs it")
    listing = subprocess.run(["nm", "-S", str(library())], capture_output=True, text=True,
                             check=True).stdout
    table = {}
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) == 4:
            table[fields[3]] = (int(fields[0], 16), int(fields[1], 16))
    for name in ("cpuinfo_initialize", FEATURE_TABLE, HARDWARE_CONFIG):
        if name not in table:
            raise RuntimeError(f"{library()}: symbol {name!r} not in its symbol table")
    return table


def _load_address() -> int:
    """Where the library's first segment is mapped in this process."""
    target = str(library())
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if (len(fields) >= 6 and int(fields[2], 16) == 0
                    and os.path.realpath(fields[5]) == target):
                return int(fields[0].split("-")[0], 16)
    raise RuntimeError(f"{target} is not mapped in this process")


def _address(name: str) -> tuple[int, int]:
    offset, size = symbols()[name]
    return _load_address() + offset, size


def feature_table() -> bytes:
    """cpuinfo's feature table as this process sees it (cpuinfo initialised first)."""
    initialise = ctypes.CFUNCTYPE(ctypes.c_bool)(_address("cpuinfo_initialize")[0])
    if not initialise():
        raise RuntimeError("cpuinfo_initialize() failed")
    address, size = _address(FEATURE_TABLE)
    return ctypes.string_at(address, size)


def xnnpack_arch_flags() -> str:
    """XNNPACK's ISA bit set as hex ('0' * 16 until the first interpreter initialises it)."""
    address, size = _address(HARDWARE_CONFIG)
    return ctypes.string_at(address, size)[ARCH_FLAGS][::-1].hex()


def _under_valgrind(*arguments: str) -> str:
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is not on PATH; the ISA cap reads a Haswell's CPUID "
                           "through it")
    command = ["valgrind", "--tool=none", "-q", sys.executable, __file__, *arguments]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}:\n"
                           f"{result.stderr[-2000:]}")
    return result.stdout.strip().splitlines()[-1]


@functools.cache
def haswell_feature_table() -> bytes:
    """cpuinfo's feature table under valgrind, which reports a Haswell CPU."""
    return bytes.fromhex(_under_valgrind("--print-feature-table"))


def cap_to_avx2() -> dict:
    """Clear every cpuinfo feature a Haswell lacks, before XNNPACK reads them.

    Returns what was done, for a benchmark's report: the method, how many feature flags
    were cleared, and the feature tables before and after (hex, cpuinfo's field order).
    Raises RuntimeError when XNNPACK has already read the features in this process.
    """
    if int(xnnpack_arch_flags(), 16):
        raise RuntimeError("XNNPACK is already initialised in this process: cap the ISA "
                           "before the first ai_edge_litert Interpreter is created")
    native = feature_table()
    haswell = haswell_feature_table()
    if len(haswell) != len(native):
        raise RuntimeError(f"feature tables differ in size: {len(native)} here, "
                           f"{len(haswell)} under valgrind")
    capped = bytes(mine & theirs for mine, theirs in zip(native, haswell))
    address, _ = _address(FEATURE_TABLE)
    ctypes.memmove(address, capped, len(capped))
    return {
        "method": "cpuinfo feature table ANDed with valgrind's Haswell CPUID "
                  "(benchmarks/litert_isa.py)",
        "features_cleared": sum(1 for a, b in zip(native, capped) if a != b),
        "feature_table_native": native.hex(),
        "feature_table_capped": capped.hex(),
    }


def add_argument(parser: argparse.ArgumentParser) -> None:
    """`--litert-isa {native,avx2}` for a benchmark that times ai-edge-litert."""
    parser.add_argument("--litert-isa", choices=("native", "avx2"), default="native",
                        help="avx2: run LiteRT's kernels as on an AVX2-only CPU "
                             "(benchmarks/litert_isa.py)")


def apply(choice: str, cpu: dict) -> None:
    """Caps the ISA when `choice` is "avx2" and records it in `cpu["isa_caps"]["litert"]`."""
    if choice == "avx2":
        cap = cap_to_avx2()
        cpu["isa_caps"]["litert"] = (f"avx2 ({cap['features_cleared']} cpuinfo features "
                                     "cleared to valgrind's Haswell)")
        cpu["litert_feature_tables"] = {key: cap[key] for key in
                                        ("feature_table_native", "feature_table_capped")}


def _initialise_xnnpack(model: pathlib.Path) -> str:
    from ai_edge_litert.interpreter import Interpreter

    Interpreter(model_path=str(model), num_threads=1).allocate_tensors()
    return xnnpack_arch_flags()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print-feature-table", action="store_true",
                        help="print cpuinfo's feature table in hex (run under valgrind)")
    parser.add_argument("--print-arch-flags", type=pathlib.Path, metavar="MODEL",
                        help="load MODEL and print XNNPACK's ISA bit set (run under valgrind)")
    parser.add_argument("--check", type=pathlib.Path, metavar="MODEL",
                        help="compare XNNPACK's ISA bit set: native, capped, under valgrind")
    args = parser.parse_args(argv)
    if args.print_feature_table:
        print(feature_table().hex())
    elif args.print_arch_flags:
        print(_initialise_xnnpack(args.print_arch_flags))
    elif args.check:
        native = subprocess.run(
            [sys.executable, __file__, "--print-arch-flags", str(args.check)],
            capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        cap = cap_to_avx2()
        capped = _initialise_xnnpack(args.check)
        haswell = _under_valgrind("--print-arch-flags", str(args.check))
        print(f"XNNPACK arch flags  native {native}  capped {capped}  "
              f"valgrind (Haswell) {haswell}  features cleared {cap['features_cleared']}")
        if capped != haswell:
            print("the cap does not reproduce valgrind's Haswell", file=sys.stderr)
            return 1
    else:
        parser.print_help()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
