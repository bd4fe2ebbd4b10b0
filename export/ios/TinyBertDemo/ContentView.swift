import SwiftUI

/// A text field, a button and the model's answer: the smallest complete app around the model.
@main
struct TinyBertDemoApp: App {
  var body: some Scene {
    WindowGroup { ContentView() }
  }
}

struct ContentView: View {
  @State private var text = "a gorgeous, witty film"
  @State private var labels: [Label] = []
  @State private var message = ""
  // Loaded once; classification runs on a background queue that owns it.
  private static let queue = DispatchQueue(label: "tinybert.classifier")
  private static let classifier = Result { try TinyBertClassifier() }

  var body: some View {
    VStack(alignment: .leading, spacing: 12) {
      TextField("Sentence", text: $text, axis: .vertical)
        .textFieldStyle(.roundedBorder)
      Button("Classify", action: classify)
      ForEach(labels) { label in
        HStack {
          Text(label.name)
          Spacer()
          Text(String(format: "%.4f", label.score)).monospacedDigit()
        }
      }
      Text(message).foregroundStyle(.red)
      Spacer()
    }
    .padding()
  }

  private func classify() {
    let sentence = text
    Self.queue.async {
      let outcome = Result { try Self.classifier.get().classify(sentence) }
      DispatchQueue.main.async {
        switch outcome {
        case .success(let found): labels = found; message = ""
        case .failure(let error): labels = []; message = "\(error)"
        }
      }
    }
  }
}
