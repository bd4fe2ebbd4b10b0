import Foundation

/// A word piece and the `[start, end)` span of the original text it stands for. Offsets count
/// Unicode scalars (code points), as Python's str indices in `tf_tinybert.runtime` do.
struct Piece: Equatable {
  let token: String
  let start: Int
  let end: Int
}

/// BERT WordPiece tokenization with character offsets: a port of
/// `tf_tinybert/runtime/wordpiece.py` (`WordpieceTokenizer.tokenize_with_offsets`), which
/// tokenizes exactly as keras-hub's `BertTokenizer` did in training. Keep the two in step.
///
/// 1. each character loses its accents (NFD, drop Mn) where `stripAccents`;
/// 2. ASCII whitespace and Cc/Cf characters end a word and vanish; punctuation and CJK
///    ideographs end a word and are words of their own;
/// 3. each word is case-folded (NFKC_Casefold) where `lowercase`, then split greedily
///    longest-match-first into pieces, `##` marking pieces after the first; a word that
///    cannot be covered, or longer than 100 UTF-8 bytes, is one `[UNK]`.
final class WordpieceTokenizer {
  static let unk = "[UNK]"
  static let suffix = "##"
  private static let maxBytesPerWord = 100

  private let ids: [String: Int]
  private let longest: Int
  private let lowercase: Bool
  private let stripAccents: Bool
  let padId: Int
  let clsId: Int
  let sepId: Int

  /// - Parameter vocabulary: the lines of the export's vocab.txt.
  init(vocabulary: [String], lowercase: Bool = true, stripAccents: Bool = true) throws {
    var ids: [String: Int] = [:]
    for (index, token) in vocabulary.enumerated() { ids[token] = index }  // later duplicates win
    for token in ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] where ids[token] == nil {
      throw TinyBertError.badExport("vocab.txt lacks the special token \(token)")
    }
    self.ids = ids
    longest = vocabulary.map { $0.unicodeScalars.count }.max() ?? 1
    self.lowercase = lowercase
    self.stripAccents = stripAccents
    padId = ids["[PAD]"]!
    clsId = ids["[CLS]"]!
    sepId = ids["[SEP]"]!
  }

  func tokenToId(_ token: String) throws -> Int {
    guard let id = ids[token] else { throw TinyBertError.badExport("'\(token)' is not in vocab.txt") }
    return id
  }

  /// The piece ids of `text`, without [CLS]/[SEP].
  func encode(_ text: String) throws -> [Int] {
    try tokenizeWithOffsets(text).map { try tokenToId($0.token) }
  }

  /// The pieces of `text` with their code-point spans in `text`.
  func tokenizeWithOffsets(_ text: String) -> [Piece] {
    // keras-hub's TensorFlow path ends a text at its first NUL.
    let chars = Array(text.unicodeScalars.prefix { $0 != "\u{0}" })
    var pieces: [Piece] = []
    for (rawWord, start, end) in splitWords(chars) {
      let word = Array((lowercase ? Self.casefoldNfkc(rawWord) : rawWord).unicodeScalars)
      if word.isEmpty { continue }
      let sources = characterSources(chars, word, start, end)
      var position = 0
      for piece in wordpiece(word) {
        if piece == Self.unk {
          pieces.append(Piece(token: piece, start: start, end: end))
          break
        }
        let length = piece.unicodeScalars.count - (position > 0 ? Self.suffix.count : 0)
        if let sources = sources {
          let first = position > 0 ? sources[position] : start
          let last = position + length < word.count ? sources[position + length - 1] + 1 : end
          pieces.append(Piece(token: piece, start: first, end: last))
        } else {
          pieces.append(Piece(token: piece, start: start, end: end))
        }
        position += length
      }
    }
    return pieces
  }

  /// Words (not yet case-folded) with their `[start, end)` spans in `chars`.
  private func splitWords(_ chars: [Unicode.Scalar]) -> [(String, Int, Int)] {
    var words: [(String, Int, Int)] = []
    var current: [(String, Int)] = []  // (normalised char, original index)
    func flush() {
      let word = current.map { $0.0 }.joined()
      if !word.isEmpty { words.append((word, current.first!.1, current.last!.1 + 1)) }
      current.removeAll()
    }
    for (index, original) in chars.enumerated() {
      let normalised = stripAccents ? Self.removeAccents(String(original)) : String(original)
      // A stripped accent belongs to the word it decorates: widen the word's span.
      if normalised.isEmpty && !current.isEmpty { current.append(("", index)) }
      for char in normalised.unicodeScalars {
        if Self.isSeparator(char) {
          flush()
        } else if Self.isKeptDelimiter(char) {
          flush()
          current.append((String(char), index))
          flush()
        } else {
          current.append((String(char), index))
        }
      }
    }
    flush()
    return words
  }

  /// For each scalar of the normalised `word`, the index of the original character it came
  /// from; nil where normalisation mixed characters (pieces then share the word's span).
  private func characterSources(_ chars: [Unicode.Scalar], _ word: [Unicode.Scalar],
                                _ start: Int, _ end: Int) -> [Int]? {
    var sources: [Int] = []
    var rebuilt = ""
    for index in start..<end {
      var char = stripAccents ? Self.removeAccents(String(chars[index])) : String(chars[index])
      if lowercase { char = Self.casefoldNfkc(char) }
      rebuilt.unicodeScalars.append(contentsOf: char.unicodeScalars)
      sources += Array(repeating: index, count: char.unicodeScalars.count)
    }
    // Compare scalar by scalar: Swift's String == compares canonically equivalent strings equal.
    return Array(rebuilt.unicodeScalars) == word ? sources : nil
  }

  /// Greedy longest-match-first WordPiece of one normalised word (its scalars).
  private func wordpiece(_ word: [Unicode.Scalar]) -> [String] {
    func text(_ range: Range<Int>) -> String { String(String.UnicodeScalarView(word[range])) }
    if text(0..<word.count).utf8.count > Self.maxBytesPerWord { return [Self.unk] }
    var pieces: [String] = []
    var start = 0
    while start < word.count {
      let prefix = start > 0 ? Self.suffix : ""
      var end = min(word.count, start + longest)
      // (Swift's String keys compare canonically equivalent strings equal, Python's do not:
      // this differs only for vocabularies holding both the composed and decomposed form.)
      while end > start && ids[prefix + text(start..<end)] == nil { end -= 1 }
      if end == start { return [Self.unk] }
      pieces.append(prefix + text(start..<end))
      start = end
    }
    return pieces
  }

  /// `text` cut at code-point offsets (the offsets of `Piece`, `Entity` and `Answer`).
  static func slice(_ text: String, _ start: Int, _ end: Int) -> String {
    String(String.UnicodeScalarView(Array(text.unicodeScalars)[start..<end]))
  }

  static func removeAccents(_ text: String) -> String {
    let kept = text.decomposedStringWithCanonicalMapping.unicodeScalars
      .filter { $0.properties.generalCategory != .nonspacingMark }
    return String(String.UnicodeScalarView(kept))
  }

  private static func isSeparator(_ char: Unicode.Scalar) -> Bool {
    if asciiWhitespace.contains(char) { return true }
    let category = char.properties.generalCategory
    return category == .control || category == .format
  }

  private static let asciiWhitespace: Set<Unicode.Scalar> = [" ", "\t", "\n", "\r", "\u{0C}"]
  private static let punctuation: Set<Unicode.GeneralCategory> = [
    .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
    .initialPunctuation, .finalPunctuation, .otherPunctuation,
  ]
  private static let cjkRanges: [ClosedRange<UInt32>] = [
    0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
    0x2B740...0x2B81F, 0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F,
  ]
  // Unicode Default_Ignorable_Code_Point, which NFKC_Casefold removes.
  private static let ignorableRanges: [ClosedRange<UInt32>] = [
    0x00AD...0x00AD, 0x034F...0x034F, 0x061C...0x061C, 0x115F...0x1160, 0x17B4...0x17B5,
    0x180B...0x180F, 0x200B...0x200F, 0x202A...0x202E, 0x2060...0x206F, 0x3164...0x3164,
    0xFE00...0xFE0F, 0xFEFF...0xFEFF, 0xFFA0...0xFFA0, 0xFFF0...0xFFF8, 0x1BCA0...0x1BCA3,
    0x1D173...0x1D17A, 0xE0000...0xE0FFF,
  ]

  private static func isKeptDelimiter(_ char: Unicode.Scalar) -> Bool {
    let code = char.value
    let asciiPunctuation = (0x21...0x2F).contains(code) || (0x3A...0x40).contains(code)
      || (0x5B...0x60).contains(code) || (0x7B...0x7E).contains(code)
    return asciiPunctuation || punctuation.contains(char.properties.generalCategory)
      || cjkRanges.contains { $0.contains(code) }
  }

  /// Full case folding of one scalar (Python's str.casefold): upper- then lower-casing,
  /// except dotless ı (kept), capital ẞ (-> ss) and Cherokee (-> the capital letters).
  private static func foldCase(_ char: Unicode.Scalar) -> String {
    let code = char.value
    if code == 0x131 { return String(char) }
    if (0x13A0...0x13FF).contains(code) || (0xAB70...0xABBF).contains(code) {
      return char.properties.uppercaseMapping
    }
    let folded = String(char).uppercased().lowercased()
    return folded == "\u{DF}" ? "ss" : folded
  }

  /// NFKC_Casefold, as tf_text's case_fold_utf8 (wordpiece.casefold_nfkc).
  static func casefoldNfkc(_ word: String) -> String {
    let nfkc = word.precomposedStringWithCompatibilityMapping
    let folded = nfkc.unicodeScalars.map(foldCase).joined().precomposedStringWithCompatibilityMapping
    let kept = folded.unicodeScalars.filter { scalar in
      !ignorableRanges.contains { $0.contains(scalar.value) }
    }
    return String(String.UnicodeScalarView(kept))
  }
}
