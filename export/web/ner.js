// Named entities in the browser with a tf_tinybert token-classification export (the folder
// tf_tinybert.export.token_export writes: model.tflite, vocab.txt, labels.txt, export.json),
// LiteRT.js (@litertjs/core) and the WordPiece tokenizer in wordpiece.js. It does what
// tf_tinybert.runtime.TokenClassifier.entities does, step for step. Served from this folder:
//   cp /path/to/ner_export/* . && npm ci && python3 -m http.server 8000
// then open http://localhost:8000/ner.html. Query parameters (all optional):
//   model=URL of model.tflite (vocab.txt, labels.txt, export.json are read beside it)
//   wasm=URL of the LiteRT.js wasm folder   text=tag at once   report=URL to POST to (tests)
import { loadAndCompile, loadLiteRt, Tensor } from "@litertjs/core";
import { codePoints, groupEntities, WordpieceTokenizer, wordWindows } from "./wordpiece.js";

// runtime/contract.py and runtime/token_contract.py.
const INPUT_WORD_IDS = "input_word_ids";
const INPUT_MASK = "input_mask";
const INPUT_TYPE_IDS = "input_type_ids";
const TAG_PROBABILITIES = "probability";
const TASK = "token_classification";

const params = new URLSearchParams(window.location.search);
const modelUrl = new URL(params.get("model") ?? "model.tflite", window.location.href);
const wasmUrl = params.get("wasm") ?? new URL("node_modules/@litertjs/core/wasm/",
                                                window.location.href).href;

const textBox = document.getElementById("text");
const button = document.getElementById("tag");
const statusLine = document.getElementById("status");
const table = document.getElementById("entities");
document.getElementById("model-path").textContent = modelUrl.pathname;

async function fetchText(name) {
  const url = new URL(name, modelUrl);
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.text();
}

// One token per line; trailing whitespace dropped, blank lines keep their index
// (wordpiece.read_vocabulary_text).
function lines(text) {
  const rows = text.split(/\r\n|\r|\n/);
  if (rows.length && rows[rows.length - 1] === "") rows.pop();
  return rows.map((row) => row.trimEnd());
}

class TokenTagger {
  static async load() {
    const info = JSON.parse(await fetchText("export.json"));
    if (info.task !== TASK) {
      throw new Error(`${new URL("export.json", modelUrl)} says task ${info.task}; ` +
                      `this page runs ${TASK} exports`);
    }
    const tagger = new TokenTagger();
    tagger.tokenizer = new WordpieceTokenizer(lines(await fetchText("vocab.txt")),
                                              info.tokenizer);
    // Label names: stripped, blank lines skipped (model_files.load_labels).
    tagger.labels = lines(await fetchText("labels.txt")).map((l) => l.trim()).filter(Boolean);
    await loadLiteRt(wasmUrl);
    tagger.model = await loadAndCompile(modelUrl.href, { accelerator: "wasm" });
    tagger.runner = Object.values(tagger.model.signatures).find((runner) => {
      const inputs = runner.getInputDetails().map((d) => d.name);
      const outputs = runner.getOutputDetails().map((d) => d.name);
      return [INPUT_WORD_IDS, INPUT_MASK, INPUT_TYPE_IDS].every((n) => inputs.includes(n))
        && outputs.includes(TAG_PROBABILITIES);
    });
    if (!tagger.runner) throw new Error(`${modelUrl} has no signature with the BERT inputs and ${TAG_PROBABILITIES}`);
    const details = tagger.runner.getInputDetails();
    tagger.length = details.find((d) => d.name === INPUT_WORD_IDS).shape[1];
    const output = tagger.runner.getOutputDetails().find((d) => d.name === TAG_PROBABILITIES);
    if (output.shape[2] !== tagger.labels.length) {
      throw new Error(`the model has ${output.shape[2]} tags but labels.txt ${tagger.labels.length}`);
    }
    return tagger;
  }

  // [CLS] ids [SEP], padded: the probabilities of the real pieces, one Float32Array each.
  async run(ids) {
    const length = this.length;
    const tokenIds = [this.tokenizer.clsId, ...ids, this.tokenizer.sepId];
    const wordIds = new Int32Array(length).fill(this.tokenizer.padId);
    wordIds.set(tokenIds);
    const mask = new Int32Array(length);
    mask.fill(1, 0, tokenIds.length);
    const inputs = {
      [INPUT_WORD_IDS]: new Tensor(wordIds, [1, length]),
      [INPUT_MASK]: new Tensor(mask, [1, length]),
      [INPUT_TYPE_IDS]: new Tensor(new Int32Array(length), [1, length]),
    };
    const outputs = await this.runner.run(inputs);
    const tags = this.labels.length;
    const flat = (await outputs[TAG_PROBABILITIES].data()).slice();
    for (const tensor of [...Object.values(inputs), ...Object.values(outputs)]) tensor.delete();
    return ids.map((_, k) => flat.subarray((k + 1) * tags, (k + 2) * tags));
  }

  // TokenClassifier.entities: word-aligned windows of length - 2 pieces, then grouping.
  async entities(text) {
    const pieces = this.tokenizer.tokenizeWithOffsets(text);
    const probabilities = [];
    for (const [first, last] of wordWindows(pieces, this.length - 2)) {
      const ids = pieces.slice(first, last).map(([piece]) => this.tokenizer.tokenToId(piece));
      probabilities.push(...await this.run(ids));
    }
    return { pieces, entities: groupEntities(text, pieces, probabilities, this.labels) };
  }
}

function show(entities) {
  table.replaceChildren(...entities.map((entity) => {
    const row = document.createElement("tr");
    for (const value of [entity.type, entity.text, `${entity.start}:${entity.end}`,
      entity.score.toFixed(4)]) {
      const cell = document.createElement("td");
      cell.textContent = value;
      row.append(cell);
    }
    return row;
  }));
}

async function report(payload) {
  const url = params.get("report");
  if (url) await fetch(url, { method: "POST", body: JSON.stringify(payload) });
}

async function tag(tagger, text) {
  const started = performance.now();
  const { pieces, entities } = await tagger.entities(text);
  const milliseconds = performance.now() - started;
  show(entities);
  statusLine.textContent = `${entities.length} entities, ${codePoints(text).length} ` +
    `characters (${milliseconds.toFixed(1)} ms)`;
  return { text, pieces, entities, milliseconds };
}

function describe(error) {
  if (error instanceof Event) {
    return `could not load ${error.target?.src ?? "a resource"} (${error.type})`;
  }
  return String(error?.stack ?? error);
}

async function main() {
  const tagger = await TokenTagger.load();
  button.disabled = false;
  button.textContent = "Find entities";
  button.addEventListener("click", () => tag(tagger, textBox.value).catch((error) => {
    statusLine.textContent = `Error: ${describe(error)}`;
  }));
  if (params.has("text")) {
    // Several texts for tests: a JSON array in text=.
    const texts = params.get("text").startsWith("[") ? JSON.parse(params.get("text"))
      : [params.get("text")];
    const results = [];
    for (const text of texts) results.push(await tag(tagger, text));
    textBox.value = texts[texts.length - 1];
    await report({ ok: true, results });
  }
}

main().catch(async (error) => {
  statusLine.textContent = `Error: ${describe(error)}`;
  await report({ ok: false, error: describe(error) });
});
