package com.example.tinybert

import android.content.Context
import kotlin.math.exp

/** An answer: `text` is the context cut at the code-point offsets [startChar, endChar);
 *  `score` is the span's probability within its window. */
data class Answer(val text: String, val startChar: Int, val endChar: Int, val score: Double)

/**
 * Extractive question answering with a tf_tinybert QA export in `assets/<folder>/`: the steps
 * of `tf_tinybert.runtime.QuestionAnswerer.answer` (runtime/spans.py), one for one.
 *
 * Rows are `[CLS] question [SEP] window [SEP]` (segment ids 0, then 1 from the window on);
 * windows of L - |question| - 3 context pieces start [stride] pieces apart (capped at the
 * window length). In each window a span (s, e) over context positions scores
 * `start_logits[s] + end_logits[e]` with s <= e < s + [maxAnswerLength]; the best span of all
 * windows wins (an earlier one on a tie). Its score: softmax of the start logits times softmax
 * of the end logits, over that window's context positions. Not thread-safe.
 */
class TinyBertQuestionAnswerer(
    context: Context,
    folder: String = "qa",
    numThreads: Int = 2,
    private val stride: Int = 128,
    private val maxAnswerLength: Int = 30,
) : TokenModel(context, folder, TokenContract.QUESTION_ANSWERING,
               listOf(TokenContract.START_LOGITS, TokenContract.END_LOGITS), numThreads) {

    init {
        require(stride >= 1) { "Expected stride >= 1. Received: $stride" }
        require(maxAnswerLength >= 1) { "Expected maxAnswerLength >= 1. Received: $maxAnswerLength" }
    }

    fun answer(question: String, context: String): Answer {
        require(question.isNotBlank()) { "Expected a non-empty question" }
        require(context.isNotBlank()) { "Expected a non-empty context" }
        val questionIds = tokenizer.encode(question)
        val pieces = tokenizer.tokenizeWithOffsets(context)
        require(pieces.isNotEmpty()) { "The context has no word pieces." }
        val windowLength = sequenceLength - questionIds.size - 3
        require(windowLength >= 1) {
            "the question has ${questionIds.size} word pieces; with [CLS] and two [SEP] it leaves " +
                "no room for the context in a sequence length of $sequenceLength"
        }
        val step = minOf(stride, windowLength)
        val prefix = listOf(tokenizer.clsId) + questionIds + tokenizer.sepId
        var best: Answer? = null
        var bestLogit = Double.NEGATIVE_INFINITY
        var begin = 0
        while (true) {
            val end = minOf(begin + windowLength, pieces.size)
            val window = pieces.subList(begin, end)
            val tokenIds = prefix + window.map { tokenizer.tokenToId(it.token) } + tokenizer.sepId
            val typeIds = List(prefix.size) { 0 } + List(window.size + 1) { 1 }
            val starts = arrayOf(FloatArray(sequenceLength))
            val ends = arrayOf(FloatArray(sequenceLength))
            run(tokenIds, typeIds, mapOf(TokenContract.START_LOGITS to starts, TokenContract.END_LOGITS to ends))
            // Context positions are prefix.size until prefix.size + window.size.
            val startLogits = DoubleArray(window.size) { starts[0][prefix.size + it].toDouble() }
            val endLogits = DoubleArray(window.size) { ends[0][prefix.size + it].toDouble() }
            var s = -1
            var e = -1
            var logit = Double.NEGATIVE_INFINITY
            for (i in window.indices) {
                for (j in i until minOf(window.size, i + maxAnswerLength)) {
                    if (startLogits[i] + endLogits[j] > logit) {
                        logit = startLogits[i] + endLogits[j]
                        s = i
                        e = j
                    }
                }
            }
            if (logit > bestLogit) {
                bestLogit = logit
                val startChar = window[s].start
                val endChar = window[e].end
                best = Answer(WordpieceTokenizer.slice(context, startChar, endChar), startChar, endChar,
                              softmax(startLogits)[s] * softmax(endLogits)[e])
            }
            if (end == pieces.size) break
            begin += step
        }
        return best!!
    }

    private fun softmax(logits: DoubleArray): DoubleArray {
        val top = logits.max()
        val shifted = logits.map { exp(it - top) }
        val total = shifted.sum()
        return DoubleArray(logits.size) { shifted[it] / total }
    }
}
