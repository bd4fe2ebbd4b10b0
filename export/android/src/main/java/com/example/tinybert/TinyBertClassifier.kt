package com.example.tinybert

import android.content.Context
import com.google.mediapipe.tasks.core.BaseOptions
import com.google.mediapipe.tasks.text.textclassifier.TextClassifier
import com.google.mediapipe.tasks.text.textclassifier.TextClassifier.TextClassifierOptions
import java.text.Normalizer

/** One class of the model and its probability. */
data class Label(val name: String, val score: Float)

/**
 * Runs a tf_tinybert export (`model.tflite` in the app's assets) with MediaPipe Tasks.
 *
 * The model carries its WordPiece vocabulary and label names as TFLite metadata, so MediaPipe
 * tokenizes, runs and names the classes with no more code than this. Create it once (loading
 * takes tens of milliseconds) and call [classify] from a background thread; an instance is not
 * meant to be shared between threads.
 *
 * @param stripAccents remove accents before MediaPipe tokenizes, as the training tokenizer did
 *   for uncased vocabularies (`"strip_accents": true` in the export's export.json).
 */
class TinyBertClassifier(
    context: Context,
    modelAsset: String = "model.tflite",
    maxResults: Int = 3,
    private val stripAccents: Boolean = true,
) : AutoCloseable {

    private val classifier: TextClassifier = TextClassifier.createFromOptions(
        context,
        TextClassifierOptions.builder()
            .setBaseOptions(BaseOptions.builder().setModelAssetPath(modelAsset).build())
            .setMaxResults(maxResults)
            .build(),
    )

    /** The classes of [text], most probable first. */
    fun classify(text: String): List<Label> {
        val input = if (stripAccents) removeAccents(text) else text
        return classifier.classify(input)
            .classificationResult()
            .classifications()
            .first()
            .categories()
            .map { Label(it.categoryName(), it.score()) }
    }

    override fun close() = classifier.close()

    private companion object {
        // MediaPipe's BERT tokenizer lower-cases but keeps accents ("café" -> [UNK]).
        private val nonSpacingMarks = Regex("\\p{Mn}+")

        fun removeAccents(text: String): String =
            Normalizer.normalize(text, Normalizer.Form.NFD).replace(nonSpacingMarks, "")
    }
}
