import Foundation
import TensorFlowLite

/// The export's signature and tensor names: tf_tinybert/runtime/contract.py and token_contract.py.
enum TokenContract {
  static let inputWordIds = "input_word_ids"
  static let inputMask = "input_mask"
  static let inputTypeIds = "input_type_ids"
  static let inputNames = [inputWordIds, inputMask, inputTypeIds]
  static let tagProbabilities = "probability"  // float32 [1, L, tags], softmax per piece
  static let startLogits = "start_logits"      // float32 [1, L]
  static let endLogits = "end_logits"          // float32 [1, L]
  static let taskKey = "task"                  // in export.json
  static let tokenClassification = "token_classification"
  static let questionAnswering = "question_answering"
}

/// A token-task export folder in the app bundle (`model.tflite`, `vocab.txt`, `export.json`,
/// and `labels.txt` for NER: what `tf_tinybert.export.token_export` writes; add the folder to
/// the target as a folder reference), run with the LiteRT / TensorFlow Lite `Interpreter`
/// through the signature that has the three BERT inputs and `outputs`. Refuses an export of
/// another task by name (export.json's "task"), as the Python runtime does.
class TokenModel {
  let folder: String
  let tokenizer: WordpieceTokenizer
  let sequenceLength: Int
  let runner: SignatureRunner
  private let interpreter: Interpreter

  init(folder: String, task: String, outputs: [String], threads: Int) throws {
    self.folder = folder
    let info = try JSONSerialization.jsonObject(with: Self.data(folder, "export", "json"))
      as? [String: Any] ?? [:]
    let recorded = info[TokenContract.taskKey] as? String ?? ""
    guard recorded == task else {
      throw TinyBertError.badExport(
        "\(folder)/export.json says task '\(recorded)'; expected a '\(task)' export")
    }
    let options = info["tokenizer"] as? [String: Any] ?? [:]
    tokenizer = try WordpieceTokenizer(
      vocabulary: try Self.lines(folder, "vocab", "txt"),
      lowercase: options["lowercase"] as? Bool ?? true,
      stripAccents: options["strip_accents"] as? Bool ?? true)
    var interpreterOptions = Interpreter.Options()
    interpreterOptions.threadCount = threads
    let interpreter = try Interpreter(modelPath: try Self.url(folder, "model", "tflite").path,
                                      options: interpreterOptions)
    self.interpreter = interpreter
    var found: SignatureRunner?
    for key in interpreter.signatureKeys {
      let candidate = try interpreter.signatureRunner(with: key)
      if Set(TokenContract.inputNames).isSubset(of: candidate.inputs),
         Set(outputs).isSubset(of: candidate.outputs) {
        found = candidate
        break
      }
    }
    guard let runner = found else {
      throw TinyBertError.badExport(
        "\(folder)/model.tflite has no signature with inputs \(TokenContract.inputNames) and outputs \(outputs)")
    }
    self.runner = runner
    sequenceLength = try runner.input(named: TokenContract.inputWordIds).shape.dimensions[1]
  }

  /// Runs one row: `tokenIds` (with [CLS]/[SEP]) and `typeIds`, padded to `sequenceLength`;
  /// returns the named float32 outputs, flattened.
  func run(_ tokenIds: [Int], _ typeIds: [Int], outputs: [String]) throws -> [String: [Float32]] {
    let length = sequenceLength
    func data(_ values: [Int32]) -> Data { values.withUnsafeBufferPointer { Data(buffer: $0) } }
    let wordIds = (0..<length).map { Int32($0 < tokenIds.count ? tokenIds[$0] : tokenizer.padId) }
    let mask = (0..<length).map { Int32($0 < tokenIds.count ? 1 : 0) }
    let types = (0..<length).map { Int32($0 < typeIds.count ? typeIds[$0] : 0) }
    try runner.invoke(with: [TokenContract.inputWordIds: data(wordIds),
                             TokenContract.inputMask: data(mask),
                             TokenContract.inputTypeIds: data(types)])
    var result: [String: [Float32]] = [:]
    for name in outputs {
      let tensor = try runner.output(named: name)
      result[name] = tensor.data.withUnsafeBytes { Array($0.bindMemory(to: Float32.self)) }
    }
    return result
  }

  static func url(_ folder: String, _ name: String, _ ext: String) throws -> URL {
    guard let url = Bundle.main.url(forResource: name, withExtension: ext, subdirectory: folder)
    else { throw TinyBertError.modelNotInBundle("\(folder)/\(name).\(ext)") }
    return url
  }

  static func data(_ folder: String, _ name: String, _ ext: String) throws -> Data {
    try Data(contentsOf: try url(folder, name, ext))
  }

  /// One token per line, trailing whitespace dropped, blank lines kept (vocab.txt).
  static func lines(_ folder: String, _ name: String, _ ext: String) throws -> [String] {
    let text = String(decoding: try data(folder, name, ext), as: UTF8.self)
    var rows = text.replacingOccurrences(of: "\r\n", with: "\n")
      .split(separator: "\n", omittingEmptySubsequences: false)
      .flatMap { $0.split(separator: "\r", omittingEmptySubsequences: false) }
      .map(String.init)
    if rows.last == "" { rows.removeLast() }
    return rows.map { row in
      var scalars = Array(row.unicodeScalars)
      while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() }
      return String(String.UnicodeScalarView(scalars))
    }
  }
}
