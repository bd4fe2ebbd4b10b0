"""Plain-text corpora for general distillation, streamed into packed, sharded TFRecords.

A corpus is a UTF-8 text file, or a folder of them (read in name order, hidden files
skipped). Each non-blank line is a sentence or a whole document; a blank line ends a
document. Consecutive lines of one document are packed into one sequence of up to
`max_sequence_length` ids (`[CLS] ... [SEP]`), so short sentences do not waste padding; a
line longer than a sequence is split into several sequences, never cut off. Lines are
read, tokenised and written a batch at a time: memory does not grow with the corpus.

Example:
```python
from tf_tinybert.data.corpus import prepare_corpus

manifest = prepare_corpus("../shared/data/corpus", "minilm-l6-offline", "runs/general/data")
manifest.source["split_lines"]  # lines longer than a sequence, split rather than dropped
```
"""

from __future__ import annotations

import codecs
import contextlib
import os

import keras

from tf_tinybert.data import features
from tf_tinybert.data.encoding import Encoder
from tf_tinybert.data.manifest import Manifest, file_sha256, write_manifest, write_vocabulary
from tf_tinybert.data.shards import ShardWriter, claim_output_dir
from tf_tinybert.tokenizers import load_tokenizer, tokenizer_identity

__all__ = ["BinaryCorpusError", "EmptyCorpusError", "corpus_files", "prepare_corpus",
           "read_documents"]

_SNIFF_BYTES = 8192


class EmptyCorpusError(ValueError):
    """A corpus file (or folder) without any text; the message names it."""


class BinaryCorpusError(ValueError):
    """A corpus file that is not UTF-8 text (NUL bytes or undecodable bytes); names it."""


def corpus_files(path: str | os.PathLike) -> list[str]:
    """The files of a corpus: the file itself, or a folder's non-hidden files by name.

    Example:
    ```python
    corpus_files("../shared/data/corpus")  # [".../news_sentences.txt", ".../wiki_paragraphs.txt"]
    ```
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        return [os.path.abspath(path)]
    if os.path.isdir(path):
        files = sorted(os.path.join(path, name) for name in os.listdir(path)
                       if not name.startswith(".") and os.path.isfile(os.path.join(path, name)))
        if not files:
            raise EmptyCorpusError(f"{path}: the corpus folder holds no files")
        return [os.path.abspath(file) for file in files]
    raise ValueError(f"{path}: corpus file or folder not found")


def _lines(path: str):
    """(line number, text) of a file, decoded incrementally; binary content is an error."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    pending, number, any_bytes = "", 0, False
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            any_bytes = True
            if b"\x00" in block:
                raise BinaryCorpusError(
                    f"{path}: binary file (NUL byte near offset {file.tell() - len(block)}); "
                    "a corpus must be UTF-8 text"
                )
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError as error:
                line = number + 1 + block[:max(error.start, 0)].count(b"\n")
                raise BinaryCorpusError(
                    f"{path}:{line}: not UTF-8 text "
                    f"({error.reason}); a corpus must be UTF-8 text"
                ) from None
            if number == 0 and text.startswith("\ufeff"):
                text = text[1:]
            pieces = (pending + text).split("\n")
            pending = pieces.pop()
            for line in pieces:
                number += 1
                yield number, line.rstrip("\r")
    try:
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise BinaryCorpusError(f"{path}: ends inside a UTF-8 character; not UTF-8 text") from None
    if pending:
        yield number + 1, pending.rstrip("\r")
    if not any_bytes:
        raise EmptyCorpusError(f"{path}: the corpus file is empty")


def read_documents(path: str | os.PathLike):
    """Yield each document of a corpus as a list of ("file:line", text) lines.

    Raises `EmptyCorpusError` for a file without any text and `BinaryCorpusError` for one
    that is not UTF-8 text, naming the file.

    Example:
    ```python
    for document in read_documents("corpus.txt"):
        print(len(document), document[0][0])  # lines, "corpus.txt:1"
    ```
    """
    for file in corpus_files(path):
        document, found = [], False
        for number, line in _lines(file):
            if line.strip():
                document.append((f"{file}:{number}", line.strip()))
                found = True
            elif document:
                yield document
                document = []
        if document:
            yield document
        if not found:
            raise EmptyCorpusError(f"{file}: the corpus file has no text (only blank lines)")


class _Packer:
    """Packs consecutive lines' word pieces into sequences of at most `budget` pieces."""

    def __init__(self, budget: int, write):
        self.budget = budget
        self.write = write
        self.pieces: list[int] = []
        self.texts: list[str] = []
        self.split_lines = 0
        self.sequences = 0

    def add(self, text: str, pieces: list[int]) -> None:
        if not pieces:
            return
        if len(pieces) > self.budget:
            self.flush()
            self.split_lines += 1
            for start in range(0, len(pieces), self.budget):
                self.pieces, self.texts = pieces[start:start + self.budget], [text]
                self.flush()
            return
        if len(self.pieces) + len(pieces) > self.budget:
            self.flush()
        self.pieces += pieces
        self.texts.append(text)

    def flush(self) -> None:
        if self.pieces:
            self.write(self.pieces, " ".join(self.texts))
            self.sequences += 1
        self.pieces, self.texts = [], []


def prepare_corpus(
    input: str | os.PathLike,
    tokenizer,
    output: str | os.PathLike,
    max_sequence_length: int = 128,
    shard_size: int = 10000,
    overwrite: bool = False,
    pack: bool = True,
    batch_size: int = 1024,
    verbose: int = 1,
) -> Manifest:
    """Stream a plain-text corpus (file or folder) into packed, unlabeled TFRecord shards.

    Args:
        input: a UTF-8 text file, or a folder of them (see the module docstring).
        tokenizer: a preset name, keras-hub or Hugging Face folder, or a `BertTokenizer`.
        output: the folder to write shards, `manifest.json` and `vocab.txt` to.
        max_sequence_length: ids per sequence, `[CLS]` and `[SEP]` included.
        shard_size: sequences per shard.
        overwrite: replace a data set already in `output`.
        pack: pack consecutive lines of a document into one sequence (False: one line,
            or a piece of a long line, per sequence).
        batch_size: lines tokenised per call.
        verbose: 1 shows progress, 0 is silent.

    Returns:
        The `Manifest`; its `source` counts the files, documents, lines, sequences and
        `split_lines` (lines longer than a sequence, written as several sequences).

    Raises:
        EmptyCorpusError, BinaryCorpusError: naming the file. On any error `output` is left
        as it was found.

    Example:
    ```python
    prepare_corpus("corpus.txt", "minilm-l6-offline", "runs/corpus", max_sequence_length=128)
    ```
    """
    if int(max_sequence_length) < 3:
        raise ValueError(
            "Expected `max_sequence_length` >= 3 ([CLS], a token, [SEP]). "
            f"Received: max_sequence_length={max_sequence_length}"
        )
    files = corpus_files(input)
    tokenizer = load_tokenizer(tokenizer)
    encoder = Encoder(tokenizer, max_sequence_length)
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    created = not os.path.exists(output)
    directory = claim_output_dir(output, overwrite)
    writer = ShardWriter(directory, shard_size)

    def write(pieces, text):
        ids = [cls_id, *pieces, sep_id]
        writer.write(features.encode_example(ids, [0] * len(ids), text=text))

    packer = _Packer(int(max_sequence_length) - 2, write)
    progress = keras.utils.Progbar(None, verbose=verbose, unit_name="line")
    counts = {"documents": 0, "lines": 0}

    def tokenise(batch):
        for (text, boundary), pieces in zip(batch, encoder.pieces(text for text, _ in batch)):
            packer.add(text, pieces)
            if boundary or not pack:
                packer.flush()
        counts["lines"] += len(batch)
        progress.update(counts["lines"])

    try:
        batch = []
        for document in read_documents(input):
            counts["documents"] += 1
            for index, (_, text) in enumerate(document):
                batch.append((text, index == len(document) - 1))
                if len(batch) == batch_size:
                    tokenise(batch)
                    batch = []
        if batch:
            tokenise(batch)
        packer.flush()
        shards = writer.close()
        if not shards:
            raise EmptyCorpusError(f"{input}: the corpus has no word pieces to write")
        progress.update(counts["lines"], finalize=True)
        source = {
            "path": os.path.abspath(os.fspath(input)), "format": "text",
            "files": [{"path": file, "sha256": file_sha256(file)} for file in files],
            **counts, "sequences": packer.sequences, "split_lines": packer.split_lines,
            "packed": bool(pack),
        }
        if len(files) == 1:
            source["sha256"] = source["files"][0]["sha256"]
        manifest = Manifest(
            task="unlabeled", label_names=(), sequence_length=int(max_sequence_length),
            tokenizer=tokenizer_identity(tokenizer), shards=tuple(shards), source=source,
        )
        write_vocabulary(directory, tokenizer)
        write_manifest(directory, manifest)
    except BaseException:
        writer.abort()
        if created:
            with contextlib.suppress(OSError):
                os.rmdir(directory)
        raise
    return manifest
