"""export/web/ner.html in headless Chromium: LiteRT.js and the JS WordPiece tokenizer find the
same entities as `tf_tinybert.runtime.TokenClassifier` in an exported tiny NER model.

Needs Debian's chromium and the npm package `@litertjs/core` (`npm ci --prefix export/web`);
skips, saying which, where either is absent. Page, scripts, wasm and model all come from
127.0.0.1 and Chromium resolves no other host (no CDN).
"""

import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.parse

import keras
import keras_hub
import numpy as np
import pytest
from test_runtime_classifier import spread_weights
from test_web_kit import CHROMIUM_FLAGS, WEB_DIR, KitServer, chromium_path
from tiny_models import SPECIAL_TOKENS

from tf_tinybert import token_models
from tf_tinybert.export import token_export
from tf_tinybert.runtime import TokenClassifier

LITERT_DIR = WEB_DIR / "node_modules" / "@litertjs"
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
# Names split into several pieces ("nunez" = nu ##ne ##z), accented forms of vocabulary words.
WORDS = ["jose", "nu", "##ne", "##z", "flew", "to", "sao", "paulo", "and", "met", "anna",
         "lind", "##q", "##vist", "in", "berlin", "the", "cafe", "##s", "of", "straße", "ss",
         "strasse", "a", "big", "city", ",", ".", "!", "-", "'"]
LENGTH = 12  # 10 pieces a window: the longer texts run in several windows
TEXTS = [
    "José Núñez flew to São Paulo.",
    "Anna Lindqvist met JOSÉ in Berlin, and the cafés of São Paulo!",
    "Crème: the Strasse of Berlin is a big city - Anna's café, Núñez's city.",
    "  ",
    "the big big city of Lindqvist Núñez Lindqvist Núñez Lindqvist Núñez Paulo",
]
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def ner_export(tmp_path_factory):
    """Skips before exporting where Chromium or LiteRT.js is absent."""
    chromium_path()
    needed = [LITERT_DIR / "core" / "dist" / "index.js", LITERT_DIR / "core" / "wasm",
              LITERT_DIR / "wasm-utils" / "dist" / "index.js"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        pytest.skip(f"@litertjs/core is not installed ({missing[0]} absent): run "
                    "`npm ci --prefix export/web`")
    vocabulary = SPECIAL_TOKENS + WORDS
    keras.utils.set_random_seed(7)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary), num_layers=2, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=32)
    tagger = spread_weights(token_models.token_model_for(
        backbone, "token_classification", num_classes=len(LABELS)), std=0.7, seed=3)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True,
                                               strip_accents=True)
    folder = tmp_path_factory.mktemp("web_ner")
    token_export.export_token_model(tagger, tokenizer, folder, label_names=LABELS,
                                    sequence_length=LENGTH)
    return folder


def run_ner_page(server, texts):
    """Opens ner.html on all `texts` and returns what it POSTs back (or fails)."""
    port = server.server_address[1]
    query = urllib.parse.urlencode({"model": "/model/model.tflite", "report": "/report",
                                    "text": json.dumps(texts)})
    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen(
            [chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
             f"http://127.0.0.1:{port}/ner.html?{query}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            deadline = time.monotonic() + TIMEOUT_S
            with server.reported:
                while not server.reports and time.monotonic() < deadline:
                    server.reported.wait(timeout=1.0)
        finally:
            os.killpg(browser.pid, 9)
            _, stderr = browser.communicate(timeout=30)
    assert server.reports, (f"the page reported nothing in {TIMEOUT_S} s; requests: "
                            f"{server.paths}; chromium said: {stderr.decode()[-2000:]}")
    return server.reports.pop()


def test_ner_page_finds_the_entities_of_the_python_runtime(ner_export):
    classifier = TokenClassifier(ner_export / "model.tflite")
    assert classifier.tokenizer.strip_accents and classifier.sequence_length == LENGTH
    server = KitServer(str(ner_export))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        report = run_ner_page(server, TEXTS)
    finally:
        server.shutdown()
        server.server_close()
    assert report["ok"], report.get("error")
    results = report["results"]
    assert [r["text"] for r in results] == TEXTS
    found = 0
    multi_piece = False
    for text, result in zip(TEXTS, results):
        pieces = classifier.tokenizer.tokenize_with_offsets(text)
        # The JS tokenizer: the same pieces with the same code-point offsets.
        assert [tuple(p) for p in result["pieces"]] == pieces, text
        expected = classifier.entities(text)
        theirs = result["entities"]
        assert [(e["text"], e["type"], e["start"], e["end"]) for e in theirs] == \
            [(e.text, e.type, e.start_char, e.end_char) for e in expected], text
        np.testing.assert_allclose([e["score"] for e in theirs], [e.score for e in expected],
                                   atol=1e-5)
        for entity in expected:
            assert text[entity.start_char:entity.end_char] == entity.text
            multi_piece |= any(p.startswith("##") for p, s, e in pieces
                               if entity.start_char <= s and e <= entity.end_char)
        found += len(expected)
    # The comparison is not vacuous: entities appear, one of them spans a multi-piece word,
    # and the tokenizer met accents, upper case, several windows and an empty text.
    assert found >= 5 and multi_piece
    assert len(classifier.tokenizer.tokenize_with_offsets(TEXTS[-1])) > 2 * (LENGTH - 2)
    assert results[3]["pieces"] == [] and results[3]["entities"] == []
    wasm = [p for p in server.paths if p.endswith(".wasm")]
    assert wasm and all(p.startswith("/node_modules/@litertjs/core/wasm/") for p in wasm)
    assert {"/model/model.tflite", "/model/vocab.txt", "/model/labels.txt",
            "/model/export.json"} <= set(server.paths)
