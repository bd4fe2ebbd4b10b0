"""TensorFlow-free NER and extractive QA on exported token models (ai-edge-litert + WordPiece).

- `TokenClassifier(model_path).entities(text)` returns `Entity(text, type, start_char,
  end_char, score)` tuples on the original string. A text longer than the model's input is
  tagged in consecutive windows split between words.
- `QuestionAnswerer(model_path).answer(question, context)` returns `Answer(text,
  start_char, end_char, score)`: the context is split into overlapping windows (`stride`),
  every window is run, and the best span of all wins (`runtime.spans.best_answer`).

Both read the folder `tf_tinybert.export.token_export.export_token_model` writes (model,
vocab.txt, labels.txt, export.json) and refuse a model of another task by name.

Example:
```python
from tf_tinybert.runtime.token_runtime import QuestionAnswerer, TokenClassifier

ner = TokenClassifier("export/ner/model.tflite")
ner.entities("José Núñez flew to São Paulo.")
qa = QuestionAnswerer("export/qa/model.tflite")
qa.answer("Where did he fly?", "José Núñez flew to São Paulo.")
```
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from tf_tinybert.runtime import model_files
from tf_tinybert.runtime.contract import INPUT_MASK, INPUT_NAMES, INPUT_TYPE_IDS, INPUT_WORD_IDS
from tf_tinybert.runtime.entities import Entity, group_entities
from tf_tinybert.runtime.spans import MAX_ANSWER_LENGTH, Answer, best_answer, span_windows
from tf_tinybert.runtime.token_contract import OUTPUTS, TAG_PROBABILITIES, TASK_KEY
from tf_tinybert.runtime.wordpiece import WordpieceTokenizer


class _TokenModel:
    """The interpreter, signature, tokenizer and export.json of one token-task export."""

    task = ""

    def __init__(self, model_path, vocab=None, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        self.model_path = os.fspath(model_path)
        self.info = model_files.read_export_info(self.model_path)
        recorded = self.info.get(TASK_KEY)
        if recorded != self.task:
            raise model_files.ModelFileError(
                f"'{self.model_path}' is {'a ' + repr(recorded) if recorded else 'not a'} task "
                f"model (export.json {TASK_KEY!r}); {type(self).__name__} runs "
                f"{self.task!r} exports. Expected the folder written by export_token_model.")
        model_bytes = self._model_bytes = model_files.read_model_bytes(self.model_path)
        try:
            interpreter = Interpreter(model_content=model_bytes, num_threads=num_threads)
        except (ValueError, RuntimeError) as error:
            raise model_files.ModelFileError(
                f"LiteRT cannot load the TFLite model '{self.model_path}': {error}") from error
        self._runner = self._find_runner(interpreter)
        shapes = {tuple(d["shape"]) for d in self._runner.get_input_details().values()}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise model_files.ModelFileError(
                f"Expected the inputs of '{self.model_path}' to share one [1, L] shape. "
                f"Received: {shapes}.")
        self.sequence_length = int(next(iter(shapes))[1])
        tokens, self.vocab_source = model_files.load_vocabulary(self.model_path, model_bytes, vocab)
        self.tokenizer = WordpieceTokenizer(
            tokens, **model_files.tokenizer_options(self.info))

    def _find_runner(self, interpreter):
        wanted = set(OUTPUTS[self.task])
        for key, spec in interpreter.get_signature_list().items():
            if set(INPUT_NAMES) <= set(spec["inputs"]) and wanted <= set(spec["outputs"]):
                return interpreter.get_signature_runner(key)
        raise model_files.ModelFileError(
            f"The TFLite model '{self.model_path}' has no signature with inputs "
            f"{list(INPUT_NAMES)} and outputs {sorted(wanted)}.")

    def _run(self, token_ids: Sequence[int], type_ids: Sequence[int]) -> dict:
        length = self.sequence_length
        padding = length - len(token_ids)
        inputs = {
            INPUT_WORD_IDS: np.array([list(token_ids) + [self.tokenizer.pad_id] * padding], np.int32),
            INPUT_MASK: np.array([[1] * len(token_ids) + [0] * padding], np.int32),
            INPUT_TYPE_IDS: np.array([list(type_ids) + [0] * padding], np.int32),
        }
        return {name: np.asarray(value)[0] for name, value in self._runner(**inputs).items()}


def word_windows(pieces: Sequence[tuple[str, int, int]], budget: int,
                 suffix_indicator: str = "##") -> list[tuple[int, int]]:
    """`[first, last)` piece ranges of at most `budget` pieces, split before a word's first
    piece wherever possible (a word longer than `budget` is split inside).

    Example:
    >>> word_windows([("a", 0, 1), ("b", 2, 3), ("##c", 3, 4), ("d", 5, 6)], 3)
    [(0, 3), (3, 4)]
    """
    windows, start = [], 0
    while start < len(pieces):
        end = min(start + budget, len(pieces))
        if end < len(pieces):
            cut = end
            while cut > start + 1 and pieces[cut][0].startswith(suffix_indicator):
                cut -= 1
            end = cut if not pieces[cut][0].startswith(suffix_indicator) else end
        windows.append((start, end))
        start = end
    return windows


class TokenClassifier(_TokenModel):
    """Named entities with an exported `BertTokenTagger`.

    Args:
        model_path: the export folder's model.tflite.
        vocab: a vocab.txt path (default: the one beside the model).
        labels: the tag names (default: labels.txt beside the model).
        num_threads: interpreter threads.

    Example:
    ```python
    TokenClassifier("export/ner/model.tflite").entities("Angela Merkel visited Paris")
    # [Entity(text='Angela Merkel', type='PER', ...), Entity(text='Paris', type='LOC', ...)]
    ```
    """

    task = "token_classification"

    def __init__(self, model_path, vocab=None, labels=None, num_threads=None):
        super().__init__(model_path, vocab, num_threads)
        names = model_files.load_labels(self.model_path, self._model_bytes, labels)
        tags = int(self._runner.get_output_details()[TAG_PROBABILITIES]["shape"][-1])
        if names is None or len(names) != tags:
            raise model_files.ModelFileError(
                f"The model '{self.model_path}' has {tags} tags but the labels are {names}.")
        self.labels = list(names)

    def piece_probabilities(self, text: str) -> tuple[list[tuple[str, int, int]], np.ndarray]:
        """The word pieces of `text` with char spans, and their tag probabilities [n, tags]."""
        pieces = self.tokenizer.tokenize_with_offsets(text)
        rows = [np.zeros((0, len(self.labels)), np.float32)]
        for first, last in word_windows(pieces, self.sequence_length - 2):
            ids = [self.tokenizer.token_to_id(p) for p, _, _ in pieces[first:last]]
            token_ids = [self.tokenizer.cls_id, *ids, self.tokenizer.sep_id]
            probabilities = self._run(token_ids, [0] * len(token_ids))[TAG_PROBABILITIES]
            rows.append(probabilities[1:1 + len(ids)])
        return pieces, np.concatenate(rows)

    def entities(self, text: str) -> list[Entity]:
        """The entities of `text`, in order; see `runtime.entities.group_entities`."""
        if not isinstance(text, str):
            raise ValueError(f"Expected `text` to be a str. Received: {type(text).__name__}")
        pieces, probabilities = self.piece_probabilities(text)
        return group_entities(text, pieces, probabilities, self.labels)


class QuestionAnswerer(_TokenModel):
    """Extractive question answering with an exported `BertSpanExtractor`.

    Args:
        model_path: the export folder's model.tflite.
        stride: how many context pieces apart windows start (a context longer than one
            window is read in overlapping windows).
        max_answer_length: the longest answer in word pieces.

    Example:
    ```python
    qa = QuestionAnswerer("export/qa/model.tflite")
    qa.answer("Who wrote it?", long_context).text
    ```
    """

    task = "question_answering"

    def __init__(self, model_path, vocab=None, num_threads=None, stride: int = 128,
                 max_answer_length: int = MAX_ANSWER_LENGTH):
        super().__init__(model_path, vocab, num_threads)
        self.stride = int(stride)
        self.max_answer_length = int(max_answer_length)

    def answer(self, question: str, context: str) -> Answer:
        """The best answer to `question` in `context`; ValueError for an empty context or a
        question too long for the model's input."""
        for name, value in (("question", question), ("context", context)):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"Expected a non-empty str `{name}`. Received: {value!r}")
        question_ids = self.tokenizer.encode(question)
        pieces = [(self.tokenizer.token_to_id(p), s, e)
                  for p, s, e in self.tokenizer.tokenize_with_offsets(context)]
        if not pieces:
            raise ValueError("The context has no word pieces.")
        windows = span_windows(question_ids, pieces, None, self.sequence_length, self.stride,
                               self.tokenizer.cls_id, self.tokenizer.sep_id)
        scored = []
        for window in windows:
            outputs = self._run(window.token_ids, window.segment_ids)
            padding = self.sequence_length - len(window.token_ids)
            starts = np.array(list(window.token_starts) + [-1] * padding)
            ends = np.array(list(window.token_ends) + [-1] * padding)
            scored.append((outputs["start_logits"], outputs["end_logits"], starts, ends))
        return best_answer(context, scored, self.max_answer_length)


def token_predict(model_path, texts: Sequence[str] = (), question: str | None = None,
                  context: str | None = None) -> str | None:
    """What `tf-tinybert predict` prints for a token-task export; None for other models.

    A tagging export prints each text's entities (`TYPE  start:end  score  text`); a
    question-answering export needs `question` and `context` and prints the answer.

    Example:
    ```python
    print(token_predict("export/qa/model.tflite", question="Who?", context="Anna sang."))
    ```
    """
    task = model_files.read_export_info(model_path).get(TASK_KEY)
    if task not in OUTPUTS:
        if question is not None or context is not None:
            raise ValueError(
                f"--question/--context need a question_answering export; '{model_path}' is not "
                "one (its export.json names no token task).")
        return None
    if task == QuestionAnswerer.task:
        if question is None or context is None or texts:
            raise ValueError(
                f"'{model_path}' answers questions: pass --question and --context (and no texts).")
        answer = QuestionAnswerer(model_path).answer(question, context)
        return (f"{answer.text}\n  {answer.start_char}:{answer.end_char}  "
                f"score {answer.score:.4f}")
    if question is not None or context is not None or not texts:
        raise ValueError(f"'{model_path}' tags entities: pass texts (not --question/--context).")
    classifier = TokenClassifier(model_path)
    lines = []
    for text in texts:
        lines.append(text)
        for entity in classifier.entities(text):
            lines.append(f"  {entity.type:<6} {entity.start_char}:{entity.end_char}  "
                         f"{entity.score:.4f}  {entity.text}")
    return "\n".join(lines)
