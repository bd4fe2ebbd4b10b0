import Foundation
import MediaPipeTasksText

/// One class of the model and its probability.
struct Label: Identifiable {
  let name: String
  let score: Float
  var id: String { name }
}

enum TinyBertError: Error {
  case modelNotInBundle(String)
  /// An export folder that is not what the sample expects (wrong task, missing token, ...).
  case badExport(String)
}

/// Runs a tf_tinybert export (`model.tflite` in the app bundle) with MediaPipe Tasks.
///
/// The model carries its WordPiece vocabulary and label names as TFLite metadata, so
/// MediaPipe tokenizes, runs and names the classes with no more code than this. Create it
/// once and call `classify` off the main thread; an instance is not meant to be shared
/// between threads.
final class TinyBertClassifier {
  private let classifier: TextClassifier
  private let stripAccents: Bool

  /// - Parameter stripAccents: remove accents before MediaPipe tokenizes, as the training
  ///   tokenizer did for uncased vocabularies (`"strip_accents": true` in export.json).
  init(modelName: String = "model", maxResults: Int = 3, stripAccents: Bool = true) throws {
    guard let path = Bundle.main.path(forResource: modelName, ofType: "tflite") else {
      throw TinyBertError.modelNotInBundle("\(modelName).tflite")
    }
    let options = TextClassifierOptions()
    options.baseOptions.modelAssetPath = path
    options.maxResults = maxResults
    classifier = try TextClassifier(options: options)
    self.stripAccents = stripAccents
  }

  /// The classes of `text`, most probable first.
  func classify(_ text: String) throws -> [Label] {
    let input = stripAccents ? Self.removeAccents(text) : text
    let result = try classifier.classify(text: input)
    guard let head = result.classificationResult.classifications.first else { return [] }
    return head.categories.map { Label(name: $0.categoryName ?? "\($0.index)", score: $0.score) }
  }

  /// NFD, then drop non-spacing marks: keras-hub's `strip_accents`. MediaPipe's BERT
  /// tokenizer lower-cases but keeps accents ("café" would become [UNK]).
  static func removeAccents(_ text: String) -> String {
    let scalars = text.decomposedStringWithCanonicalMapping.unicodeScalars
    let kept = scalars.filter { $0.properties.generalCategory != .nonspacingMark }
    return String(String.UnicodeScalarView(kept))
  }
}
