"""export/web in headless Chromium: MediaPipe Tasks Text classifies with an exported model.

Needs Debian's chromium (`apt-get install chromium`) and the npm package
(`npm ci --prefix export/web`); skips, saying which, where either is absent. The page, its
JavaScript, the wasm files and the model all come from a server on 127.0.0.1, and Chromium
resolves no other host, so the test also proves that nothing is loaded from a CDN.
"""

import http.server
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse

import keras_hub
import numpy as np
import pytest
from runtime_export import export_tiny_model
from tiny_models import TINY_VOCAB, spread_weights, tiny_classifier

from tf_tinybert.runtime import TextClassifier

WEB_DIR = pathlib.Path(__file__).resolve().parents[1] / "export" / "web"
PACKAGE_DIR = WEB_DIR / "node_modules" / "@mediapipe" / "tasks-text"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
# The accented text checks the page's accent stripping (MediaPipe's tokenizer keeps accents).
TEXTS = ["a gorgeous, witty film", "the plot was boring and awful, not fun",
         "the fílm is góód, not AWFUL"]
TIMEOUT_S = 90


def chromium_path():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium)")
    return path


def require_npm_package():
    needed = [PACKAGE_DIR / "text_bundle.mjs", PACKAGE_DIR / "wasm"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        pytest.skip(f"@mediapipe/tasks-text is not installed ({missing[0]} absent): run "
                    "`npm ci --prefix export/web`")


class KitServer(http.server.ThreadingHTTPServer):
    """Serves export/web at / and an export folder at /model/; takes POSTed reports."""

    def __init__(self, model_dir):
        super().__init__(("127.0.0.1", 0), KitHandler)
        self.model_dir = model_dir
        self.paths = []
        self.reports = []
        self.reported = threading.Condition()


class KitHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".mjs": "text/javascript", ".js": "text/javascript",
                      ".wasm": "application/wasm", ".tflite": "application/octet-stream"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(WEB_DIR), **kwargs)

    def translate_path(self, path):
        route = urllib.parse.urlsplit(path).path
        if route.startswith("/model/"):
            return os.path.join(self.server.model_dir, os.path.basename(route))
        return super().translate_path(path)

    def do_GET(self):
        self.server.paths.append(urllib.parse.urlsplit(self.path).path)
        super().do_GET()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.end_headers()
        with self.server.reported:
            self.server.reports.append(json.loads(body))
            self.server.reported.notify_all()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser_and_package():
    """Skips before any export where Chromium or the npm package is absent."""
    path = chromium_path()
    require_npm_package()
    return path


@pytest.fixture(scope="module")
def exported(browser_and_package, tmp_path_factory):
    model = spread_weights(tiny_classifier(num_classes=2, seed=5))
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=list(TINY_VOCAB), lowercase=True,
                                               strip_accents=True)
    return export_tiny_model(model, tokenizer, str(tmp_path_factory.mktemp("web")),
                             labels=("negative", "positive"), sequence_length=16)


def run_page(server, text):
    """Opens the page in headless Chromium and returns what it POSTs back (or fails)."""
    port = server.server_address[1]
    query = urllib.parse.urlencode({"model": "/model/model.tflite", "text": text,
                                    "report": "/report"})
    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen(
            [chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
             f"http://127.0.0.1:{port}/index.html?{query}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + TIMEOUT_S
            with server.reported:
                while not server.reports and time.monotonic() < deadline:
                    server.reported.wait(timeout=1.0)
        finally:
            os.killpg(browser.pid, signal.SIGKILL)
            _, stderr = browser.communicate(timeout=30)
    assert server.reports, (f"the page reported nothing in {TIMEOUT_S} s; requests: "
                            f"{server.paths}; chromium said: {stderr.decode()[-2000:]}")
    return server.reports.pop()


def test_web_page_classifies_with_local_mediapipe_and_matches_our_runtime(exported):
    server = KitServer(os.path.dirname(exported))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        ours = TextClassifier(exported)
        assert ours.tokenizer.strip_accents
        for text in TEXTS:
            report = run_page(server, text)
            assert report["ok"], report.get("error")
            result = report["result"]
            assert result["text"] == text
            theirs = {c["categoryName"]: c["score"] for c in result["categories"]}
            mine = ours.classify(text).scores()
            assert theirs.keys() == mine.keys() == {"negative", "positive"}
            np.testing.assert_allclose([theirs[k] for k in mine], list(mine.values()),
                                       atol=1e-4)
    finally:
        server.shutdown()
        server.server_close()
    wasm = [p for p in server.paths if p.endswith(".wasm")]
    assert wasm and all(p.startswith("/node_modules/@mediapipe/tasks-text/wasm/") for p in wasm)
    assert "/model/model.tflite" in server.paths
