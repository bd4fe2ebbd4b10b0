"""Atomic file writes: write under a temporary name in the same folder, then `os.replace`.

A reader (or a run resumed after `kill -9`) sees either the old file or the complete new one,
never a half-written file.

Example:
```python
from tf_tinybert.atomic import atomic_path, write_text

write_text("runs/x/report.md", "# Report\n")
with atomic_path("runs/x/student.keras") as temporary:
    student.save(temporary)
```
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
from collections.abc import Iterator


def save_model(model, path: str | os.PathLike) -> None:
    """Save a Keras model (`.keras`) under a temporary name, then rename it into place.

    Example:
    ```python
    save_model(student, "runs/x/student.keras")
    ```
    """
    with atomic_path(path) as temporary:
        model.save(temporary)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[pathlib.Path]:
    """Yield a temporary path beside `path` (same suffix); rename it onto `path` on success.

    The parent folder is created if needed. On an exception the temporary file (or folder)
    is removed and `path` is left as it was.

    Example:
    ```python
    with atomic_path("plots/loss.png") as temporary:
        figure.savefig(temporary)
    ```
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        elif temporary.exists():
            temporary.unlink()


def write_bytes(path: str | os.PathLike, content: bytes) -> None:
    """Write `content` to `path` atomically.

    Example:
    ```python
    write_bytes("runs/x/model.tflite", model_bytes)
    ```
    """
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically.

    Example:
    ```python
    write_text("runs/x/report.md", "# Report\\n")
    ```
    """
    write_bytes(path, text.encode("utf-8"))
