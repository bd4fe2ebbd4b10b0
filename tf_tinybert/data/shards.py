"""Writing `*.tfrecord` shards atomically, and claiming an output directory."""

from __future__ import annotations

import glob
import os

import tensorflow as tf

from tf_tinybert.data.manifest import MANIFEST_NAME, Shard, file_sha256

SHARD_PATTERN = "*.tfrecord"


def claim_output_dir(directory: str, overwrite: bool, inputs=()) -> str:
    """Makes `directory` ready for a new data set and returns its absolute path.

    A directory that already holds a data set (a manifest or shards) is refused unless
    `overwrite`; then its manifest goes first, so a crash meanwhile leaves no data set
    that looks whole. `inputs` are directories that must not be overwritten.
    """
    directory = os.path.abspath(os.fspath(directory))
    for source in inputs:
        if os.path.abspath(os.fspath(source)) == directory:
            raise ValueError(f"{directory}: the output directory must differ from the input")
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ValueError(f"{directory}: output exists and is not a directory")
    manifest = os.path.join(directory, MANIFEST_NAME)
    old_shards = glob.glob(os.path.join(directory, SHARD_PATTERN))
    if os.path.exists(manifest) or old_shards:
        if not overwrite:
            raise ValueError(
                f"{directory}: already holds a data set ({MANIFEST_NAME} or *.tfrecord). "
                "Pass overwrite=True (--overwrite) to replace it, or choose another output."
            )
        if os.path.exists(manifest):
            os.remove(manifest)
        # Complete shards, then temporary files a killed run left behind.
        for path in old_shards + glob.glob(os.path.join(directory, ".*.tmp-*")):
            os.remove(path)
    os.makedirs(directory, exist_ok=True)
    return directory


class ShardWriter:
    """Writes records into `prefix-00000.tfrecord`, ... of `shard_size` records each.

    Each shard is written under a hidden temporary name and renamed when complete, so a
    reader never sees half a shard. `abort()` removes what this writer made.

    Example:
    ```python
    writer = ShardWriter("out", shard_size=1000)
    writer.write(record_bytes)
    shards = writer.close()   # [Shard(file="data-00000.tfrecord", examples=1, ...)]
    ```
    """

    def __init__(self, directory: str, shard_size: int, prefix: str = "data"):
        if int(shard_size) < 1:
            raise ValueError(f"Expected `shard_size` >= 1. Received: shard_size={shard_size}")
        self.directory = directory
        self.shard_size = int(shard_size)
        self.prefix = prefix
        self.shards: list[Shard] = []
        self._writer = None
        self._temporary = None
        self._count = 0

    def _name(self) -> str:
        return f"{self.prefix}-{len(self.shards):05d}.tfrecord"

    def write(self, record: bytes) -> None:
        if self._writer is None:
            self._temporary = os.path.join(self.directory, f".{self._name()}.tmp-{os.getpid()}")
            self._writer = tf.io.TFRecordWriter(self._temporary)
            self._count = 0
        self._writer.write(record)
        self._count += 1
        if self._count == self.shard_size:
            self._finish_shard()

    def _finish_shard(self) -> None:
        self._writer.close()
        name = self._name()
        final = os.path.join(self.directory, name)
        shard = Shard(name, self._count, os.path.getsize(self._temporary), file_sha256(self._temporary))
        os.replace(self._temporary, final)
        self.shards.append(shard)
        self._writer, self._temporary = None, None

    @property
    def num_examples(self) -> int:
        return sum(shard.examples for shard in self.shards) + (self._count if self._writer else 0)

    def close(self) -> list[Shard]:
        """Finishes the open shard; returns every shard written."""
        if self._writer is not None:
            self._finish_shard()
        return list(self.shards)

    def abort(self) -> None:
        """Removes the open temporary shard and the shards already written."""
        if self._writer is not None:
            self._writer.close()
            os.remove(self._temporary)
            self._writer, self._temporary = None, None
        for shard in self.shards:
            path = os.path.join(self.directory, shard.file)
            if os.path.exists(path):
                os.remove(path)
        self.shards = []


class CorruptShardError(ValueError):
    """A shard that is missing, truncated, altered or unreadable; the message names it."""


def shard_paths(directory: str, manifest, verify: bool = True) -> list[str]:
    """The manifest's shard paths, after checking each against the manifest.

    Sizes are always checked; with `verify` the sha256 too (about 1 s per GB). A
    `*.tfrecord` file in the directory that the manifest does not list is refused: it is
    left over from another run.
    """
    directory = os.path.abspath(os.fspath(directory))
    listed = {shard.file for shard in manifest.shards}
    unlisted = sorted(
        os.path.basename(path) for path in glob.glob(os.path.join(directory, SHARD_PATTERN))
        if os.path.basename(path) not in listed
    )
    if unlisted:
        raise CorruptShardError(
            f"{directory}: shard(s) {unlisted[:5]} are not listed in {MANIFEST_NAME}; they are "
            "left over from another run. Remove them or prepare the directory again."
        )
    paths = []
    for shard in manifest.shards:
        path = os.path.join(directory, shard.file)
        if not os.path.exists(path):
            raise CorruptShardError(f"{path}: shard listed in {MANIFEST_NAME} is missing")
        size = os.path.getsize(path)
        if size != shard.bytes:
            raise CorruptShardError(
                f"{path}: shard is {size} bytes, {MANIFEST_NAME} says {shard.bytes} "
                "(truncated or altered); prepare the data again"
            )
        if verify and file_sha256(path) != shard.sha256:
            raise CorruptShardError(
                f"{path}: shard content differs from {MANIFEST_NAME} (sha256 mismatch: "
                "corrupted); prepare the data again"
            )
        paths.append(path)
    return paths


def read_records(path: str, batch_size: int = 256):
    """Yields a shard's serialized records in batches (numpy arrays of bytes), in order.

    Raises:
        CorruptShardError: naming the shard, where TensorFlow reports data loss.
    """
    dataset = tf.data.TFRecordDataset(path).batch(batch_size)
    try:
        yield from dataset.as_numpy_iterator()
    except tf.errors.DataLossError as error:
        raise CorruptShardError(f"{path}: corrupted TFRecord shard ({error.message})") from None
