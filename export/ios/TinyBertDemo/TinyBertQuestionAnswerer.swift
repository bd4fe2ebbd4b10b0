import Foundation

/// An answer: `text` is the context cut at the code-point offsets `startChar..<endChar`;
/// `score` is the span's probability within its window.
struct Answer: Equatable {
  let text: String
  let startChar: Int
  let endChar: Int
  let score: Double
}

/// Extractive question answering with a tf_tinybert QA export in the bundle folder `folder`:
/// the steps of `tf_tinybert.runtime.QuestionAnswerer.answer` (runtime/spans.py), one for one.
///
/// Rows are `[CLS] question [SEP] window [SEP]` (segment ids 0, then 1 from the window on);
/// windows of L - |question| - 3 context pieces start `stride` pieces apart (capped at the
/// window length). In each window a span (s, e) over context positions scores
/// `startLogits[s] + endLogits[e]` with s <= e < s + `maxAnswerLength`; the best span of all
/// windows wins (an earlier one on a tie). Its score: softmax of the start logits times
/// softmax of the end logits, over that window's context positions. Not thread-safe.
final class TinyBertQuestionAnswerer: TokenModel {
  let stride: Int
  let maxAnswerLength: Int

  init(folder: String = "qa", threads: Int = 2, stride: Int = 128, maxAnswerLength: Int = 30) throws {
    guard stride >= 1, maxAnswerLength >= 1 else {
      throw TinyBertError.badExport("Expected stride >= 1 and maxAnswerLength >= 1")
    }
    self.stride = stride
    self.maxAnswerLength = maxAnswerLength
    try super.init(folder: folder, task: TokenContract.questionAnswering,
                   outputs: [TokenContract.startLogits, TokenContract.endLogits], threads: threads)
  }

  func answer(question: String, context: String) throws -> Answer {
    for (name, value) in [("question", question), ("context", context)]
    where value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
      throw TinyBertError.badExport("Expected a non-empty \(name)")
    }
    let questionIds = try tokenizer.encode(question)
    let pieces = tokenizer.tokenizeWithOffsets(context)
    guard !pieces.isEmpty else { throw TinyBertError.badExport("The context has no word pieces.") }
    let windowLength = sequenceLength - questionIds.count - 3
    guard windowLength >= 1 else {
      throw TinyBertError.badExport(
        "the question has \(questionIds.count) word pieces; with [CLS] and two [SEP] it leaves "
          + "no room for the context in a sequence length of \(sequenceLength)")
    }
    let step = min(stride, windowLength)
    let prefix = [tokenizer.clsId] + questionIds + [tokenizer.sepId]
    var best: Answer?
    var bestLogit = -Double.infinity
    var begin = 0
    while true {
      let end = min(begin + windowLength, pieces.count)
      let window = Array(pieces[begin..<end])
      let tokenIds = try prefix + window.map { try tokenizer.tokenToId($0.token) } + [tokenizer.sepId]
      let typeIds = Array(repeating: 0, count: prefix.count) + Array(repeating: 1, count: window.count + 1)
      let outputs = try run(tokenIds, typeIds,
                            outputs: [TokenContract.startLogits, TokenContract.endLogits])
      // Context positions are prefix.count ..< prefix.count + window.count.
      let positions = prefix.count..<(prefix.count + window.count)
      let startLogits = outputs[TokenContract.startLogits]![positions].map { Double($0) }
      let endLogits = outputs[TokenContract.endLogits]![positions].map { Double($0) }
      var (s, e, logit) = (-1, -1, -Double.infinity)
      for i in 0..<window.count {
        for j in i..<min(window.count, i + maxAnswerLength) where startLogits[i] + endLogits[j] > logit {
          (s, e, logit) = (i, j, startLogits[i] + endLogits[j])
        }
      }
      if logit > bestLogit {
        bestLogit = logit
        let (startChar, endChar) = (window[s].start, window[e].end)
        best = Answer(text: WordpieceTokenizer.slice(context, startChar, endChar),
                      startChar: startChar, endChar: endChar,
                      score: Self.softmax(startLogits)[s] * Self.softmax(endLogits)[e])
      }
      if end == pieces.count { break }
      begin += step
    }
    return best!
  }

  private static func softmax(_ logits: [Double]) -> [Double] {
    let top = logits.max() ?? 0
    let shifted = logits.map { exp($0 - top) }
    let total = shifted.reduce(0, +)
    return shifted.map { $0 / total }
  }
}
