"""TextClassifier: an exported tf_tinybert model on ai-edge-litert, with no TensorFlow.

The model's signature is the one MediaPipe's TextClassifier reads: int32 `input_word_ids`,
`input_mask`, `input_type_ids` of shape [1, L] and a softmax `probability` [1, C]. A
regression export (STS-B) has a float32 `score` [1, 1] instead: `TextClassifier.classify`
then returns one category named "score" holding the predicted value, and
`TextClassifier.score` returns that float.

Sentence pairs (MRPC, STS-B, RTE, QNLI, QQP, MNLI) are packed `[CLS] a [SEP] b [SEP]` with
segment ids 0 then 1, exactly as `tf_tinybert.data` encodes them for training.

A dynamic-length export (`export_classifier(..., dynamic_length=True)`, inputs of
shape_signature [1, -1]) runs each text at its own length: truncated at the maximum that
export.json records, padded not at all, the inputs resized only when the length changes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tf_tinybert.runtime import model_files
from tf_tinybert.runtime.contract import (
    EXPORT_INFO_FILE,
    INPUT_MASK,
    INPUT_NAMES,
    OUTPUT_NAME,
    SCORE_NAME,
)
from tf_tinybert.runtime.wordpiece import WordpieceTokenizer


@dataclass(frozen=True)
class Category:
    """One class and its score; field names follow MediaPipe's `Category`."""

    index: int
    score: float
    category_name: str


@dataclass(frozen=True)
class Classification:
    """The classes of one text (and optional second text), best score first."""

    text: str
    categories: tuple[Category, ...]
    text_pair: str | None = None

    @property
    def top(self) -> Category:
        """The best-scoring category."""
        return self.categories[0]

    @property
    def label(self) -> str:
        """The best-scoring category's name."""
        return self.categories[0].category_name

    @property
    def score(self) -> float:
        """The best-scoring category's score."""
        return self.categories[0].score

    def scores(self) -> dict[str, float]:
        """Category name -> score."""
        return {category.category_name: category.score for category in self.categories}


class TextClassifier:
    """Classifies text with an exported .tflite BERT classifier on ai-edge-litert.

    Args:
        model_path: the .tflite file written by `tf_tinybert.export.export_classifier`.
        vocab: a vocab.txt path; by default the vocabulary in the model's metadata, else the
            vocab.txt beside the model.
        labels: class names (a list or a labels.txt path); by default those in the model's
            metadata, else labels.txt beside the model, else "0", "1", ...
        num_threads: CPU threads for the interpreter (None: LiteRT's default).
        lowercase, strip_accents: tokenizer options; by default those recorded in export.json
            beside the model, else True and True (an uncased BERT vocabulary).
        max_sequence_length: a dynamic-length model only: where to truncate; by default the
            `sequence_length` recorded in export.json beside the model (a model alone
            carries no maximum; its position embedding fails beyond it).

    Attributes:
        task_type: "classification" (a `probability` output) or "regression" (a `score`
            output; `labels` is then ["score"]).
        dynamic_length: True where the model takes any length ([1, -1] inputs).
        sequence_length: the fixed L, or a dynamic model's maximum (texts are truncated
            to it either way).

    Example:
    ```python
    from tf_tinybert.runtime import TextClassifier

    classifier = TextClassifier("export/model.tflite", num_threads=2)
    result = classifier.classify("a gorgeous, witty film")
    print(result.label, result.score)
    results = classifier.classify(["a gorgeous, witty film", "a boring mess"])
    # A sentence-pair model (MRPC) takes the second sentence as `text_pair`:
    pair = classifier.classify("He left.", text_pair="He went away.")
    # A regression export (STS-B) returns its score:
    similarity = TextClassifier("stsb/model.tflite").score("A man sings.", "A man is singing.")
    ```
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        vocab: str | os.PathLike | None = None,
        labels: Sequence[str] | str | os.PathLike | None = None,
        num_threads: int | None = None,
        *,
        lowercase: bool | None = None,
        strip_accents: bool | None = None,
        max_sequence_length: int | None = None,
    ) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.model_path = os.fspath(model_path)
        if num_threads is not None and (
            isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1
        ):
            raise ValueError(
                f"Expected `num_threads` to be a positive int or None. Received: {num_threads!r}"
            )
        self.num_threads = num_threads
        model_bytes = model_files.read_model_bytes(self.model_path)
        try:
            self._interpreter = Interpreter(model_content=model_bytes, num_threads=num_threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise model_files.ModelFileError(
                f"LiteRT cannot load the TFLite model '{self.model_path}': {error}"
            ) from error
        self._runner, length, self._output_name = self._find_signature()
        self.task_type = "regression" if self._output_name == SCORE_NAME else "classification"
        output = self._runner.get_output_details()[self._output_name]
        self._output_quantization = output["quantization"]
        info = model_files.read_export_info(self.model_path)
        self.dynamic_length = length is None
        self.sequence_length = self._maximum_length(length, max_sequence_length, info)
        self._bind_tensors(output["index"])

        tokens, vocab_source = model_files.load_vocabulary(self.model_path, model_bytes, vocab)
        options = model_files.tokenizer_options(info)
        if lowercase is not None:
            options["lowercase"] = lowercase
        if strip_accents is not None:
            options["strip_accents"] = strip_accents
        try:
            self.tokenizer = WordpieceTokenizer(tokens, **options)
        except ValueError as error:
            raise model_files.ModelFileError(f"Vocabulary {vocab_source}: {error}") from error
        self.vocab_source = vocab_source

        num_classes = int(output["shape"][-1])
        if self.task_type == "regression":
            if labels is not None or num_classes != 1:
                raise model_files.ModelFileError(
                    f"The model '{self.model_path}' is a regression model (a '{SCORE_NAME}' "
                    f"output of {num_classes} value(s)); expected one value and no labels. "
                    f"Received labels: {labels!r}."
                )
            self.labels = [SCORE_NAME]
            return
        names = model_files.load_labels(self.model_path, model_bytes, labels)
        if names is None:
            names = [str(index) for index in range(num_classes)]
        if len(names) != num_classes:
            raise model_files.ModelFileError(
                f"The model '{self.model_path}' has {num_classes} classes but {len(names)} "
                f"labels were given or found: {names}."
            )
        self.labels = names

    def _find_signature(self):
        signatures = self._interpreter.get_signature_list()
        for key, spec in signatures.items():
            name = next((n for n in (OUTPUT_NAME, SCORE_NAME) if n in spec["outputs"]), None)
            if set(INPUT_NAMES) <= set(spec["inputs"]) and name is not None:
                runner = self._interpreter.get_signature_runner(key)
                shapes = {
                    name: tuple(int(d) for d in details["shape_signature"])
                    for name, details in runner.get_input_details().items()
                }
                lengths = {shape[-1] for shape in shapes.values()}
                if len(lengths) != 1 or any(len(shape) != 2 for shape in shapes.values()):
                    raise model_files.ModelFileError(
                        f"Expected the inputs of '{self.model_path}' to share one [1, L] "
                        f"shape. Received: {shapes}."
                    )
                length = lengths.pop()
                return runner, (None if length == -1 else length), name
        raise model_files.ModelFileError(
            f"The TFLite model '{self.model_path}' has no signature with inputs "
            f"{list(INPUT_NAMES)} and output '{OUTPUT_NAME}' (or '{SCORE_NAME}' for "
            "regression). Received signatures: "
            f"{ {key: dict(spec) for key, spec in signatures.items()} }. Export it with "
            "tf_tinybert.export.export_classifier."
        )

    def _maximum_length(self, fixed, given, info) -> int:
        """The fixed L; or a dynamic model's maximum: `given`, else export.json's."""
        if fixed is not None:
            if given is not None and given != fixed:
                raise ValueError(
                    f"'{self.model_path}' takes a fixed sequence length of {fixed}. Received: "
                    f"max_sequence_length={given!r} (leave it None)."
                )
            return fixed
        source = "max_sequence_length"
        if given is None:
            given = info.get("sequence_length")
            source = f"'sequence_length' in the {EXPORT_INFO_FILE} beside the model"
        if given is None:
            raise model_files.ModelFileError(
                f"'{self.model_path}' takes any sequence length ([1, -1] inputs) and there is "
                f"no {EXPORT_INFO_FILE} beside it recording where to truncate. Pass "
                "`max_sequence_length=` (at most the model's position embedding size)."
            )
        if isinstance(given, bool) or not isinstance(given, int) or given < 2:
            raise ValueError(f"Expected {source} to be an int >= 2. Received: {given!r}.")
        return given

    def _bind_tensors(self, output_index: int) -> None:
        """Runs through the interpreter's own tensors where the signature is its main
        subgraph (so inputs are resized only when the length changes), else the runner."""
        details = self._runner.get_input_details()
        self._input_indices = {name: int(details[name]["index"]) for name in INPUT_NAMES}
        main = {int(d["index"]) for d in self._interpreter.get_input_details()}
        self._direct = set(self._input_indices.values()) == main
        self._output_index = int(output_index)
        self._length = None if self.dynamic_length else self.sequence_length
        if self._direct:
            # A signature runner holds a reference to the interpreter's internals, and
            # `Interpreter.invoke` refuses to run while one exists.
            self._runner = None

    def run_encoded(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """The raw output row for inputs from `encode` (what a latency benchmark times).

        A dynamic-length model's inputs are resized (and its tensors re-allocated) only
        when the length differs from the previous call's.

        Example:
        ```python
        classifier.run_encoded(classifier.encode("a witty film"))
        ```
        """
        length = int(inputs[INPUT_NAMES[0]].shape[0])
        if not self._direct:
            outputs = self._runner(**{name: value[None, :] for name, value in inputs.items()})
            return np.asarray(outputs[self._output_name])[0]
        if length != self._length:
            for index in self._input_indices.values():
                self._interpreter.resize_tensor_input(index, [1, length])
            self._interpreter.allocate_tensors()
            self._length = length
        for name, index in self._input_indices.items():
            self._interpreter.set_tensor(index, inputs[name][None, :])
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output_index)[0]

    def encode(self, text: str, text_pair: str | None = None) -> dict[str, np.ndarray]:
        """The int32 inputs [n] for one text (and pair): padded to L on a fixed model; on a
        dynamic-length model its own length n (at most `sequence_length`), unpadded.

        Example:
        ```python
        TextClassifier("export/model.tflite").encode("a witty film")["input_word_ids"]
        ```
        """
        inputs = self.tokenizer.pack(text, text_pair, sequence_length=self.sequence_length)
        if self.dynamic_length:
            length = int(np.count_nonzero(inputs[INPUT_MASK]))
            inputs = {name: value[:length] for name, value in inputs.items()}
        return inputs

    def probabilities(self, text: str, text_pair: str | None = None) -> np.ndarray:
        """The model's float32 class probabilities [C] for one text (and optional pair);
        for a regression model its one score [1]."""
        return self._scores(self.encode(text, text_pair))

    def _scores(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        values = np.asarray(self.run_encoded(inputs))
        scale, zero_point = self._output_quantization
        if values.dtype != np.float32 and scale:
            values = (values.astype(np.float32) - zero_point) * scale
        return values.astype(np.float32)

    def score(self, text: str, text_pair: str | None = None) -> float:
        """The predicted value of a regression model (e.g. STS-B similarity, 0-5).

        Example:
        ```python
        TextClassifier("stsb/model.tflite").score("A man sings.", "A man is singing.")
        ```
        """
        if self.task_type != "regression":
            raise ValueError(
                f"`score` needs a regression model (a '{SCORE_NAME}' output); "
                f"'{self.model_path}' is a classifier with labels {self.labels}. Use "
                "`classify` instead."
            )
        return float(self.probabilities(text, text_pair)[0])

    def classify(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        top_k: int | None = None,
    ) -> Classification | list[Classification]:
        """Classifies one text (returns a Classification) or a list (returns a list).

        A pair is packed `[CLS] text [SEP] text_pair [SEP]` (segment ids 0, then 1). Texts
        longer than the model's sequence length are truncated as in training (round-robin
        over the two texts of a pair, which keeps the same tokens as BERT's "shorten the
        longer text first"); empty text is classified as `[CLS] [SEP]`. `top_k` keeps only
        the best k categories. A regression model gives one category, "score", whose
        `score` is the predicted value. A list is encoded first, then run shortest text
        first (a dynamic-length model then resizes its inputs once per distinct length);
        the results keep the list's order.
        """
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"Expected `top_k` to be a positive int or None. Received: {top_k!r}")
        if isinstance(text, str):
            if text_pair is not None and not isinstance(text_pair, str):
                raise ValueError(
                    "Expected `text_pair` to be a str when `text` is a str. Received: "
                    f"{type(text_pair).__name__}."
                )
            return self._classify_one(text, text_pair, top_k)
        texts = list(text)
        pairs = [None] * len(texts) if text_pair is None else list(text_pair)
        if isinstance(text_pair, str) or len(pairs) != len(texts):
            raise ValueError(
                f"Expected `text_pair` to be a list as long as `text` ({len(texts)}). Received: "
                f"{text_pair!r}"
            )
        for position, item in enumerate(texts):
            if not isinstance(item, str):
                raise ValueError(
                    f"Expected every text to be a str. Received: {type(item).__name__} at "
                    f"position {position}."
                )
        encoded = [self.encode(t, p) for t, p in zip(texts, pairs)]
        # A dynamic-length model re-plans its tensors whenever the length changes (about
        # 0.1 ms for the 3-layer SST-2 student); running the texts shortest first changes
        # it once per distinct length. Results come back in the caller's order.
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i][INPUT_NAMES[0]]))
        results = [None] * len(texts)
        for i in order:
            results[i] = self._classification(texts[i], pairs[i], self._scores(encoded[i]), top_k)
        return results

    def _classify_one(self, text: str, text_pair: str | None, top_k: int | None):
        return self._classification(text, text_pair, self.probabilities(text, text_pair), top_k)

    def _classification(self, text: str, text_pair: str | None, scores: np.ndarray,
                        top_k: int | None) -> Classification:
        order = np.argsort(-scores, kind="stable")[:top_k]
        categories = tuple(
            Category(int(index), float(scores[index]), self.labels[index]) for index in order
        )
        return Classification(text=text, categories=categories, text_pair=text_pair)


def predict_main(
    model_path: str | os.PathLike,
    texts: Sequence[str],
    top_k: int | None = None,
    text_pairs: Sequence[str] | None = None,
) -> list[Classification]:
    """What `tf-tinybert predict MODEL TEXT... [--pair TEXT2...]` runs: classify each text
    (with its pair, for a sentence-pair model) with the model.

    Example:
    ```python
    results = predict_main("export/model.tflite", ["a gorgeous, witty film"], top_k=1)
    print(format_classifications(results))
    predict_main("mrpc/model.tflite", ["He left."], text_pairs=["He went away."])
    ```
    """
    if isinstance(texts, str):
        texts = [texts]
    if isinstance(text_pairs, str):
        text_pairs = [text_pairs]
    if text_pairs is not None and len(text_pairs) != len(texts):
        raise ValueError(
            f"Expected one --pair text per text ({len(texts)}). Received {len(text_pairs)} "
            "--pair texts."
        )
    return TextClassifier(model_path).classify(
        list(texts), text_pair=None if text_pairs is None else list(text_pairs), top_k=top_k)


def format_classifications(classifications: Sequence[Classification]) -> str:
    """A plain-text report: each text, then one `label  score` line per category.

    Example:
    >>> result = Classification("fun", (Category(1, 0.875, "positive"),
    ...                                 Category(0, 0.125, "negative")))
    >>> print(format_classifications([result]))
    fun
      positive  0.8750
      negative  0.1250
    """
    lines = []
    for result in classifications:
        lines.append(result.text if result.text_pair is None else
                     f"{result.text} ||| {result.text_pair}")
        width = max(len(category.category_name) for category in result.categories)
        lines += [f"  {c.category_name:<{width}}  {c.score:.4f}" for c in result.categories]
    return "\n".join(lines)
