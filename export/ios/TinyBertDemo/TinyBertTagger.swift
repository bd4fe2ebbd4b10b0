import Foundation

/// One entity: `text` is the input cut at the code-point offsets `startChar..<endChar`;
/// `score` is the mean probability of the chosen tag over its words.
struct Entity: Equatable {
  let text: String
  let type: String
  let startChar: Int
  let endChar: Int
  let score: Double
}

/// Named entities with a tf_tinybert NER export in the bundle folder `folder`: the steps of
/// `tf_tinybert.runtime.TokenClassifier.entities`, one for one.
///
/// 1. WordPiece with offsets; 2. windows of at most L - 2 pieces, cut before a word's first
/// piece (`wordWindows`), each run as `[CLS] pieces [SEP]`; 3. a word's tag is the argmax of
/// its first piece; 4. words grouped into entities by conlleval's rules (`entityChunks`).
/// Create once, call `entities` off the main thread; not thread-safe.
final class TinyBertTagger: TokenModel {
  let labels: [String]

  init(folder: String = "ner", threads: Int = 2) throws {
    labels = try TokenModel.lines(folder, "labels", "txt")
      .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
    try super.init(folder: folder, task: TokenContract.tokenClassification,
                   outputs: [TokenContract.tagProbabilities], threads: threads)
    let tags = try runner.output(named: TokenContract.tagProbabilities).shape.dimensions[2]
    guard tags == labels.count else {
      throw TinyBertError.badExport("\(folder)/model.tflite has \(tags) tags but labels.txt \(labels.count)")
    }
  }

  func entities(_ text: String) throws -> [Entity] {
    let pieces = tokenizer.tokenizeWithOffsets(text)
    var probabilities: [[Float32]] = []
    for (first, last) in Self.wordWindows(pieces, budget: sequenceLength - 2) {
      let ids = try pieces[first..<last].map { try tokenizer.tokenToId($0.token) }
      let flat = try run([tokenizer.clsId] + ids + [tokenizer.sepId],
                         Array(repeating: 0, count: ids.count + 2),
                         outputs: [TokenContract.tagProbabilities])[TokenContract.tagProbabilities]!
      for k in 0..<ids.count {
        probabilities.append(Array(flat[(k + 1) * labels.count..<(k + 2) * labels.count]))
      }
    }
    return try Self.groupEntities(text, pieces, probabilities, labels)
  }

  /// `[first, last)` piece ranges of at most `budget` pieces, split before a word's first
  /// piece wherever possible (token_runtime.word_windows).
  static func wordWindows(_ pieces: [Piece], budget: Int) -> [(Int, Int)] {
    var windows: [(Int, Int)] = []
    var start = 0
    while start < pieces.count {
      var end = min(start + budget, pieces.count)
      if end < pieces.count {
        var cut = end
        while cut > start + 1 && pieces[cut].token.hasPrefix(WordpieceTokenizer.suffix) { cut -= 1 }
        if !pieces[cut].token.hasPrefix(WordpieceTokenizer.suffix) { end = cut }
      }
      windows.append((start, end))
      start = end
    }
    return windows
  }

  /// runtime/entities.py group_entities.
  static func groupEntities(_ text: String, _ pieces: [Piece], _ probabilities: [[Float32]],
                            _ labels: [String]) throws -> [Entity] {
    var words: [(first: Int, start: Int, end: Int)] = []
    for (index, piece) in pieces.enumerated() {
      if !words.isEmpty && piece.token.hasPrefix(WordpieceTokenizer.suffix) {
        words[words.count - 1].end = max(words[words.count - 1].end, piece.end)
      } else {
        words.append((index, piece.start, piece.end))
      }
    }
    var tagIds: [Int] = []
    var tagScores: [Double] = []
    for word in words {
      let row = probabilities[word.first]
      var best = 0
      for k in 1..<row.count where row[k] > row[best] { best = k }
      tagIds.append(best)
      tagScores.append(Double(row[best]))
    }
    return try entityChunks(tagIds.map { labels[$0] }).map { chunk in
      let start = words[chunk.start].start
      let end = words[chunk.end - 1].end
      let scores = tagScores[chunk.start..<chunk.end]
      return Entity(text: WordpieceTokenizer.slice(text, start, end), type: chunk.type,
                    startChar: start, endChar: end,
                    score: scores.reduce(0, +) / Double(scores.count))
    }
  }

  private static func splitTag(_ tag: String) throws -> (prefix: String, type: String) {
    if tag == "O" { return ("O", "") }
    guard let dash = tag.firstIndex(of: "-") else {
      throw TinyBertError.badExport("Expected a tag 'O' or '<B|I|E|S>-<type>'. Received: '\(tag)'")
    }
    let prefix = String(tag[..<dash])
    let type = String(tag[tag.index(after: dash)...])
    guard ["B", "I", "E", "S"].contains(prefix), !type.isEmpty else {
      throw TinyBertError.badExport("Expected a tag 'O' or '<B|I|E|S>-<type>'. Received: '\(tag)'")
    }
    return (prefix, type)
  }

  /// conlleval's chunks `(type, start, end)` of a tag sequence (runtime/tags.py).
  static func entityChunks(_ tags: [String]) throws -> [(type: String, start: Int, end: Int)] {
    var chunks: [(type: String, start: Int, end: Int)] = []
    var previous = (prefix: "O", type: "")
    var start: Int?
    for (index, tag) in tags.enumerated() {
      let current = try splitTag(tag)
      let ends = previous.prefix != "O" && (["E", "S"].contains(previous.prefix)
        || ["B", "S", "O"].contains(current.prefix) || previous.type != current.type)
      if let first = start, ends {
        chunks.append((previous.type, first, index))
        start = nil
      }
      let starts = current.prefix != "O" && (["B", "S"].contains(current.prefix)
        || ["O", "E", "S"].contains(previous.prefix) || previous.type != current.type)
      if starts { start = index }
      previous = current
    }
    if let first = start { chunks.append((previous.type, first, tags.count)) }
    return chunks
  }
}
