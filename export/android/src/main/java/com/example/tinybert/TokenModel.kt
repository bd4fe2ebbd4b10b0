package com.example.tinybert

import android.content.Context
import org.json.JSONObject
import org.tensorflow.lite.Interpreter
import java.io.FileInputStream
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel

/** The export's signature and tensor names: tf_tinybert/runtime/contract.py and token_contract.py. */
object TokenContract {
    const val INPUT_WORD_IDS = "input_word_ids"
    const val INPUT_MASK = "input_mask"
    const val INPUT_TYPE_IDS = "input_type_ids"
    val INPUT_NAMES = listOf(INPUT_WORD_IDS, INPUT_MASK, INPUT_TYPE_IDS)
    const val TAG_PROBABILITIES = "probability"  // float32 [1, L, tags], softmax per piece
    const val START_LOGITS = "start_logits"      // float32 [1, L]
    const val END_LOGITS = "end_logits"          // float32 [1, L]
    const val TASK_KEY = "task"                  // in export.json
    const val TOKEN_CLASSIFICATION = "token_classification"
    const val QUESTION_ANSWERING = "question_answering"
}

/**
 * A token-task export folder in the app's assets (`model.tflite`, `vocab.txt`, `export.json`,
 * and `labels.txt` for NER: what `tf_tinybert.export.token_export` writes), run with the LiteRT
 * `Interpreter` through the signature that has the three BERT inputs and [outputs].
 * Refuses an export of another task by name (export.json's "task"), as the Python runtime does.
 */
abstract class TokenModel(
    context: Context,
    protected val folder: String,
    task: String,
    outputs: List<String>,
    numThreads: Int,
) : AutoCloseable {
    protected val interpreter: Interpreter
    protected val signature: String
    val sequenceLength: Int
    val tokenizer: WordpieceTokenizer

    init {
        val info = JSONObject(readAsset(context, "$folder/export.json"))
        val recorded = info.optString(TokenContract.TASK_KEY)
        require(recorded == task) {
            "$folder/export.json says task '$recorded'; ${javaClass.simpleName} runs '$task' exports"
        }
        val options = info.optJSONObject("tokenizer") ?: JSONObject()
        tokenizer = WordpieceTokenizer(
            readLines(context, "$folder/vocab.txt"),
            lowercase = options.optBoolean("lowercase", true),
            stripAccents = options.optBoolean("strip_accents", true),
        )
        interpreter = Interpreter(mapAsset(context, "$folder/model.tflite"),
                                  Interpreter.Options().setNumThreads(numThreads))
        signature = interpreter.signatureKeys.firstOrNull { key ->
            interpreter.getSignatureInputs(key).toList().containsAll(TokenContract.INPUT_NAMES) &&
                interpreter.getSignatureOutputs(key).toList().containsAll(outputs)
        } ?: throw IllegalArgumentException(
            "$folder/model.tflite has no signature with inputs ${TokenContract.INPUT_NAMES} and outputs $outputs")
        sequenceLength = interpreter.getInputTensorFromSignature(TokenContract.INPUT_WORD_IDS, signature).shape()[1]
    }

    /** Runs one row: [tokenIds] (with [CLS]/[SEP]) and [typeIds], padded to [sequenceLength];
     *  [outputs] are the buffers the named outputs are written to. */
    protected fun run(tokenIds: List<Int>, typeIds: List<Int>, outputs: Map<String, Any>) {
        val length = sequenceLength
        val inputs = mapOf<String, Any>(
            TokenContract.INPUT_WORD_IDS to arrayOf(IntArray(length) { tokenIds.getOrElse(it) { tokenizer.padId } }),
            TokenContract.INPUT_MASK to arrayOf(IntArray(length) { if (it < tokenIds.size) 1 else 0 }),
            TokenContract.INPUT_TYPE_IDS to arrayOf(IntArray(length) { typeIds.getOrElse(it) { 0 } }),
        )
        interpreter.runSignature(inputs, outputs, signature)
    }

    override fun close() = interpreter.close()

    companion object {
        fun readAsset(context: Context, name: String): String =
            context.assets.open(name).use { it.readBytes().toString(Charsets.UTF_8) }

        /** One token per line, trailing whitespace dropped, blank lines kept (vocab.txt). */
        fun readLines(context: Context, name: String): List<String> =
            readAsset(context, name).split("\r\n", "\r", "\n")
                .let { if (it.last().isEmpty()) it.dropLast(1) else it }
                .map { it.trimEnd() }

        /** The model memory-mapped out of the APK (stored uncompressed: see build.gradle.kts). */
        fun mapAsset(context: Context, name: String): MappedByteBuffer =
            context.assets.openFd(name).use { descriptor ->
                FileInputStream(descriptor.fileDescriptor).channel.use { channel ->
                    channel.map(FileChannel.MapMode.READ_ONLY, descriptor.startOffset, descriptor.declaredLength)
                }
            }
    }
}
