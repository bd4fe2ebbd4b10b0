package com.example.tinybert

import android.content.Context

/** One entity: `text` is the input cut at the code-point offsets [startChar, endChar);
 *  `score` is the mean probability of the chosen tag over its words. */
data class Entity(val text: String, val type: String, val startChar: Int, val endChar: Int, val score: Double)

/**
 * Named entities with a tf_tinybert NER export in `assets/<folder>/`: the steps of
 * `tf_tinybert.runtime.TokenClassifier.entities`, one for one.
 *
 * 1. WordPiece with offsets; 2. windows of at most L - 2 pieces, cut before a word's first
 * piece ([wordWindows]), each run as `[CLS] pieces [SEP]`; 3. a word's tag is the argmax of its
 * first piece; 4. words grouped into entities by conlleval's rules ([entityChunks]).
 * Create once, call [entities] off the main thread; not thread-safe.
 */
class TinyBertTagger(context: Context, folder: String = "ner", numThreads: Int = 2) :
    TokenModel(context, folder, TokenContract.TOKEN_CLASSIFICATION,
               listOf(TokenContract.TAG_PROBABILITIES), numThreads) {

    /** Label names: labels.txt stripped, blank lines skipped. */
    val labels: List<String> = readLines(context, "$folder/labels.txt").map { it.trim() }.filter { it.isNotEmpty() }

    init {
        val tags = interpreter.getOutputTensorFromSignature(TokenContract.TAG_PROBABILITIES, signature).shape()[2]
        require(tags == labels.size) { "$folder/model.tflite has $tags tags but labels.txt ${labels.size}" }
    }

    fun entities(text: String): List<Entity> {
        val pieces = tokenizer.tokenizeWithOffsets(text)
        val probabilities = ArrayList<FloatArray>(pieces.size)
        for ((first, last) in wordWindows(pieces, sequenceLength - 2)) {
            val ids = pieces.subList(first, last).map { tokenizer.tokenToId(it.token) }
            val output = arrayOf(Array(sequenceLength) { FloatArray(labels.size) })
            run(listOf(tokenizer.clsId) + ids + tokenizer.sepId, List(ids.size + 2) { 0 },
                mapOf(TokenContract.TAG_PROBABILITIES to output))
            for (k in ids.indices) probabilities += output[0][k + 1]
        }
        return groupEntities(text, pieces, probabilities, labels)
    }

    companion object {
        /** `[first, last)` piece ranges of at most [budget] pieces, split before a word's first
         *  piece wherever possible (token_runtime.word_windows). */
        fun wordWindows(pieces: List<Piece>, budget: Int): List<Pair<Int, Int>> {
            val windows = ArrayList<Pair<Int, Int>>()
            var start = 0
            while (start < pieces.size) {
                var end = minOf(start + budget, pieces.size)
                if (end < pieces.size) {
                    var cut = end
                    while (cut > start + 1 && pieces[cut].token.startsWith(WordpieceTokenizer.SUFFIX)) cut--
                    if (!pieces[cut].token.startsWith(WordpieceTokenizer.SUFFIX)) end = cut
                }
                windows += start to end
                start = end
            }
            return windows
        }

        /** runtime/entities.py group_entities. */
        fun groupEntities(text: String, pieces: List<Piece>, probabilities: List<FloatArray>,
                          labels: List<String>): List<Entity> {
            val words = ArrayList<IntArray>()  // first piece index, start, end
            for ((index, piece) in pieces.withIndex()) {
                if (words.isNotEmpty() && piece.token.startsWith(WordpieceTokenizer.SUFFIX)) {
                    words.last()[2] = maxOf(words.last()[2], piece.end)
                } else {
                    words += intArrayOf(index, piece.start, piece.end)
                }
            }
            val tagIds = words.map { word ->
                val row = probabilities[word[0]]
                row.indices.fold(0) { best, k -> if (row[k] > row[best]) k else best }
            }
            val tagScores = words.mapIndexed { i, word -> probabilities[word[0]][tagIds[i]].toDouble() }
            return entityChunks(tagIds.map { labels[it] }).map { (type, first, last) ->
                val start = words[first][1]
                val end = words[last - 1][2]
                Entity(WordpieceTokenizer.slice(text, start, end), type, start, end,
                       tagScores.subList(first, last).average())
            }
        }

        private fun splitTag(tag: String): Pair<String, String> {
            if (tag == "O") return "O" to ""
            val prefix = tag.substringBefore('-', "")
            val type = tag.substringAfter('-', "")
            require(prefix in setOf("B", "I", "E", "S") && type.isNotEmpty()) {
                "Expected a tag 'O' or '<B|I|E|S>-<type>'. Received: '$tag'"
            }
            return prefix to type
        }

        /** conlleval's chunks `(type, start, end)` of a tag sequence (runtime/tags.py). */
        fun entityChunks(tags: List<String>): List<Triple<String, Int, Int>> {
            val chunks = ArrayList<Triple<String, Int, Int>>()
            var previous = "O" to ""
            var start = -1
            for ((index, tag) in tags.withIndex()) {
                val (prefix, type) = splitTag(tag)
                val (previousPrefix, previousType) = previous
                val ends = previousPrefix != "O" && (previousPrefix in setOf("E", "S") ||
                    prefix in setOf("B", "S", "O") || previousType != type)
                if (start >= 0 && ends) {
                    chunks += Triple(previousType, start, index)
                    start = -1
                }
                val starts = prefix != "O" && (prefix in setOf("B", "S") ||
                    previousPrefix in setOf("O", "E", "S") || previousType != type)
                if (starts) start = index
                previous = prefix to type
            }
            if (start >= 0) chunks += Triple(previous.second, start, tags.size)
            return chunks
        }
    }
}
