// Classifies a sentence with a tf_tinybert export (model.tflite with TFLite metadata) using
// MediaPipe Tasks Text in the browser. Everything is served from this folder:
//   cp /path/to/export/model.tflite . && npm ci && python3 -m http.server 8000
// then open http://localhost:8000/. Query parameters (all optional):
//   model=URL of the .tflite   wasm=URL of the MediaPipe wasm folder
//   text=a sentence to classify at once   report=URL to POST the result to (used by tests)
//   strip_accents=0 to keep accents (see stripAccents below; default 1)
import {
  FilesetResolver,
  TextClassifier,
} from "./node_modules/@mediapipe/tasks-text/text_bundle.mjs";

const params = new URLSearchParams(window.location.search);
const modelPath = params.get("model") ?? "model.tflite";
const wasmPath = params.get("wasm") ?? new URL("node_modules/@mediapipe/tasks-text/wasm",
                                                 window.location.href).href;

// tf_tinybert trains with keras-hub's tokenizer, which for uncased Hugging Face vocabularies
// removes accents (NFD, then drop non-spacing marks). MediaPipe's BERT tokenizer lower-cases
// but keeps accents, so "café" would become [UNK]; removing them here restores the training
// tokenization. Set strip_accents=0 for a model whose export.json says strip_accents: false.
const stripAccentsOn = params.get("strip_accents") !== "0";
function stripAccents(text) {
  return stripAccentsOn ? text.normalize("NFD").replace(/\p{Mn}/gu, "") : text;
}

const textBox = document.getElementById("text");
const button = document.getElementById("classify");
const statusLine = document.getElementById("status");
const table = document.getElementById("categories");
document.getElementById("model-path").textContent = modelPath;

function show(result) {
  table.replaceChildren(...result.categories.map((category) => {
    const row = document.createElement("tr");
    for (const value of [category.categoryName, category.score.toFixed(4)]) {
      const cell = document.createElement("td");
      cell.textContent = value;
      row.append(cell);
    }
    return row;
  }));
}

async function report(payload) {
  const url = params.get("report");
  if (url) {
    await fetch(url, { method: "POST", body: JSON.stringify(payload) });
  }
}

function classify(classifier, text) {
  const started = performance.now();
  const head = classifier.classify(stripAccents(text)).classifications[0];
  const result = {
    text,
    milliseconds: performance.now() - started,
    categories: head.categories.map(({ index, score, categoryName }) =>
      ({ index, score, categoryName })),
  };
  show(result);
  statusLine.textContent = `${result.categories[0].categoryName} ` +
    `(${result.milliseconds.toFixed(1)} ms)`;
  return result;
}

async function main() {
  const fileset = await FilesetResolver.forTextTasks(wasmPath);
  const classifier = await TextClassifier.createFromOptions(fileset, {
    baseOptions: { modelAssetPath: modelPath },
  });
  button.disabled = false;
  button.textContent = "Classify";
  button.addEventListener("click", () => classify(classifier, textBox.value));
  if (params.has("text")) {
    textBox.value = params.get("text");
    await report({ ok: true, result: classify(classifier, textBox.value) });
  }
}

function describe(error) {
  // A failed <script> or wasm fetch rejects with an Event rather than an Error.
  if (error instanceof Event) {
    return `could not load ${error.target?.src ?? "a resource"} (${error.type})`;
  }
  return String(error?.stack ?? error);
}

main().catch(async (error) => {
  statusLine.textContent = `Error: ${describe(error)}`;
  await report({ ok: false, error: describe(error) });
});
