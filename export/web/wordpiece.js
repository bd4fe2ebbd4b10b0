// BERT WordPiece tokenization with character offsets, and entity grouping, for tf_tinybert's
// token-task exports in the browser. A line-by-line port of tf_tinybert/runtime/wordpiece.py
// (tokenize_with_offsets), runtime/tags.py (entity_chunks), runtime/entities.py
// (group_entities) and runtime/token_runtime.py (word_windows): keep them in step.
//
// Offsets count Unicode code points, as Python's str indices do (not UTF-16 units, as JS
// string indices do): `codePoints(text).slice(start, end).join("")` is the entity's text.

const SUFFIX = "##";
const MAX_BYTES_PER_WORD = 100;  // longer words become [UNK], as in tf_text
const ASCII_WHITESPACE = new Set([" ", "\t", "\n", "\r", "\f"]);
const ASCII_PUNCTUATION = /^[!-/:-@[-`{-~]$/;
const CJK_RANGES = [[0x4E00, 0x9FFF], [0x3400, 0x4DBF], [0x20000, 0x2A6DF], [0x2A700, 0x2B73F],
  [0x2B740, 0x2B81F], [0x2B820, 0x2CEAF], [0xF900, 0xFAFF], [0x2F800, 0x2FA1F]];
// Unicode Default_Ignorable_Code_Point, which NFKC_Casefold removes.
const IGNORABLE_RANGES = [[0x00AD, 0x00AD], [0x034F, 0x034F], [0x061C, 0x061C],
  [0x115F, 0x1160], [0x17B4, 0x17B5], [0x180B, 0x180F], [0x200B, 0x200F], [0x202A, 0x202E],
  [0x2060, 0x206F], [0x3164, 0x3164], [0xFE00, 0xFE0F], [0xFEFF, 0xFEFF], [0xFFA0, 0xFFA0],
  [0xFFF0, 0xFFF8], [0x1BCA0, 0x1BCA3], [0x1D173, 0x1D17A], [0xE0000, 0xE0FFF]];
const utf8 = new TextEncoder();

export function codePoints(text) {
  return Array.from(text);
}

function inRanges(char, ranges) {
  const code = char.codePointAt(0);
  return ranges.some(([low, high]) => low <= code && code <= high);
}

// Ends a word and vanishes (ASCII whitespace, control and format characters).
function isSeparator(char) {
  return ASCII_WHITESPACE.has(char) || /^[\p{Cc}\p{Cf}]$/u.test(char);
}

// Ends a word and stays a word of its own (punctuation, CJK ideographs).
function isKeptDelimiter(char) {
  return ASCII_PUNCTUATION.test(char) || /^\p{P}$/u.test(char) || inRanges(char, CJK_RANGES);
}

export function removeAccents(text) {
  return text.normalize("NFD").replace(/\p{Mn}/gu, "");
}

// Full case folding of one code point (Python's str.casefold). JS has none: upper- then
// lower-casing agrees with it for every code point of Unicode 14 except dotless ı (kept),
// capital ẞ (-> ss) and Cherokee (folds to the capital letters), handled here.
function foldCase(char) {
  const code = char.codePointAt(0);
  if (code === 0x131) return char;
  if ((code >= 0x13A0 && code <= 0x13FF) || (code >= 0xAB70 && code <= 0xABBF)) {
    return char.toUpperCase();
  }
  const folded = char.toUpperCase().toLowerCase();
  return folded === "\u00DF" ? "ss" : folded;
}

// NFKC_Casefold, as tf_text's case_fold_utf8 (wordpiece.casefold_nfkc).
export function casefoldNfkc(word) {
  const folded = codePoints(word.normalize("NFKC")).map(foldCase).join("").normalize("NFKC");
  return codePoints(folded).filter((c) => !inRanges(c, IGNORABLE_RANGES)).join("");
}

export class WordpieceTokenizer {
  // vocabulary: the lines of vocab.txt; options: export.json's "tokenizer" object.
  constructor(vocabulary, { lowercase = true, strip_accents: stripAccents = true } = {}) {
    this.vocabulary = vocabulary;
    this.ids = new Map(vocabulary.map((token, index) => [token, index]));
    for (const token of ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]) {
      if (!this.ids.has(token)) throw new Error(`vocab.txt lacks the special token ${token}`);
    }
    this.lowercase = lowercase;
    this.stripAccents = stripAccents;
    this.longest = Math.max(...vocabulary.map((t) => codePoints(t).length));
    this.padId = this.ids.get("[PAD]");
    this.clsId = this.ids.get("[CLS]");
    this.sepId = this.ids.get("[SEP]");
  }

  tokenToId(piece) {
    return this.ids.get(piece);
  }

  // Greedy longest-match-first WordPiece of one normalised word (an array of code points).
  wordpiece(word) {
    if (utf8.encode(word.join("")).length > MAX_BYTES_PER_WORD) return ["[UNK]"];
    const pieces = [];
    let start = 0;
    while (start < word.length) {
      const prefix = start ? SUFFIX : "";
      let end = Math.min(word.length, start + this.longest);
      while (end > start && !this.ids.has(prefix + word.slice(start, end).join(""))) end -= 1;
      if (end === start) return ["[UNK]"];
      pieces.push(prefix + word.slice(start, end).join(""));
      start = end;
    }
    return pieces;
  }

  // Words (not yet case-folded) with their [start, end) code-point spans in `chars`.
  splitWords(chars) {
    const words = [];
    let current = [];  // [normalised char, original index]
    const flush = () => {
      const word = current.map(([c]) => c).join("");
      if (word) words.push([word, current[0][1], current[current.length - 1][1] + 1]);
      current = [];
    };
    for (let index = 0; index < chars.length; index += 1) {
      const normalised = this.stripAccents ? removeAccents(chars[index]) : chars[index];
      // A stripped accent belongs to the word it decorates: widen the word's span.
      if (!normalised && current.length) current.push(["", index]);
      for (const char of codePoints(normalised)) {
        if (isSeparator(char)) {
          flush();
        } else if (isKeptDelimiter(char)) {
          flush();
          current.push([char, index]);
          flush();
        } else {
          current.push([char, index]);
        }
      }
    }
    flush();
    return words;
  }

  // For each code point of the normalised `word`, its [start, end) in `chars`; null where
  // normalisation mixed characters (the pieces then share the word's span).
  characterSources(chars, word, start, end) {
    const sources = [];
    let rebuilt = "";
    for (let index = start; index < end; index += 1) {
      let char = this.stripAccents ? removeAccents(chars[index]) : chars[index];
      if (this.lowercase) char = casefoldNfkc(char);
      rebuilt += char;
      for (let k = 0; k < codePoints(char).length; k += 1) sources.push([index, index + 1]);
    }
    return rebuilt === word.join("") ? sources : null;
  }

  // [[piece, start, end], ...] of `text` (code-point offsets), as tokenize_with_offsets.
  tokenizeWithOffsets(text) {
    const chars = codePoints(text.split("\u0000", 1)[0]);
    const pieces = [];
    for (const [rawWord, start, end] of this.splitWords(chars)) {
      const word = codePoints(this.lowercase ? casefoldNfkc(rawWord) : rawWord);
      if (!word.length) continue;
      const sources = this.characterSources(chars, word, start, end);
      let position = 0;
      for (const piece of this.wordpiece(word)) {
        if (piece === "[UNK]") {
          pieces.push([piece, start, end]);
          break;
        }
        const length = codePoints(piece).length - (position ? SUFFIX.length : 0);
        if (sources === null) {
          pieces.push([piece, start, end]);
        } else {
          const first = position ? sources[position][0] : start;
          const last = position + length < word.length ? sources[position + length - 1][1] : end;
          pieces.push([piece, first, last]);
        }
        position += length;
      }
    }
    return pieces;
  }
}

// [first, last) piece ranges of at most `budget` pieces, split before a word's first piece
// wherever possible (token_runtime.word_windows).
export function wordWindows(pieces, budget) {
  const windows = [];
  let start = 0;
  while (start < pieces.length) {
    let end = Math.min(start + budget, pieces.length);
    if (end < pieces.length) {
      let cut = end;
      while (cut > start + 1 && pieces[cut][0].startsWith(SUFFIX)) cut -= 1;
      if (!pieces[cut][0].startsWith(SUFFIX)) end = cut;
    }
    windows.push([start, end]);
    start = end;
  }
  return windows;
}

function splitTag(tag) {
  if (tag === "O") return ["O", ""];
  const dash = tag.indexOf("-");
  const prefix = tag.slice(0, dash);
  if (dash < 0 || !["B", "I", "E", "S"].includes(prefix) || dash === tag.length - 1) {
    throw new Error(`Expected a tag 'O' or '<B|I|E|S>-<type>'. Received: ${tag}`);
  }
  return [prefix, tag.slice(dash + 1)];
}

// conlleval's chunks of a tag sequence: [[type, start, end), ...] (runtime/tags.py).
export function entityChunks(tags) {
  const chunks = [];
  let previous = ["O", ""];
  let start = null;
  tags.forEach((tag, index) => {
    const [prefix, type] = splitTag(tag);
    const [previousPrefix, previousType] = previous;
    const ends = previousPrefix !== "O" && (["E", "S"].includes(previousPrefix)
      || ["B", "S", "O"].includes(prefix) || previousType !== type);
    if (start !== null && ends) {
      chunks.push([previousType, start, index]);
      start = null;
    }
    const starts = prefix !== "O" && (["B", "S"].includes(prefix)
      || ["O", "E", "S"].includes(previousPrefix) || previousType !== type);
    if (starts) start = index;
    previous = [prefix, type];
  });
  if (start !== null) chunks.push([previous[1], start, tags.length]);
  return chunks;
}

// Entities of `text` from its pieces and their tag probabilities (one array per piece):
// a word's tag is the argmax of its first piece; score is the mean of those maxima.
export function groupEntities(text, pieces, probabilities, labels) {
  const chars = codePoints(text);
  const words = [];  // [first piece index, start, end]
  pieces.forEach(([piece, start, end], index) => {
    if (words.length && piece.startsWith(SUFFIX)) {
      const last = words[words.length - 1];
      last[2] = Math.max(last[2], end);
    } else {
      words.push([index, start, end]);
    }
  });
  const tagIds = [];
  const tagScores = [];
  for (const [first] of words) {
    const row = probabilities[first];
    let best = 0;
    for (let k = 1; k < row.length; k += 1) if (row[k] > row[best]) best = k;
    tagIds.push(best);
    tagScores.push(row[best]);
  }
  return entityChunks(tagIds.map((id) => labels[id])).map(([type, first, last]) => {
    const start = words[first][1];
    const end = words[last - 1][2];
    const scores = tagScores.slice(first, last);
    return { text: chars.slice(start, end).join(""), type, start, end,
             score: scores.reduce((a, b) => a + b, 0) / scores.length };
  });
}
