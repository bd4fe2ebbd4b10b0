package com.example.tinybert

import java.text.Normalizer
import java.util.Locale

/**
 * A word piece and the `[start, end)` span of the original text it stands for. Offsets count
 * Unicode code points, as Python's str indices in `tf_tinybert.runtime` do (not UTF-16 chars).
 */
data class Piece(val token: String, val start: Int, val end: Int)

/**
 * BERT WordPiece tokenization with character offsets: a port of
 * `tf_tinybert/runtime/wordpiece.py` (`WordpieceTokenizer.tokenize_with_offsets`), which
 * tokenizes exactly as keras-hub's `BertTokenizer` did in training. Keep the two in step.
 *
 * 1. each character loses its accents (NFD, drop Mn) where [stripAccents];
 * 2. ASCII whitespace and Cc/Cf characters end a word and vanish; punctuation and CJK
 *    ideographs end a word and are words of their own;
 * 3. each word is case-folded (NFKC_Casefold) where [lowercase], then split greedily
 *    longest-match-first into pieces, `##` marking pieces after the first; a word that cannot
 *    be covered, or longer than 100 UTF-8 bytes, is one `[UNK]`.
 *
 * @param vocabulary the lines of the export's vocab.txt.
 */
class WordpieceTokenizer(
    vocabulary: List<String>,
    private val lowercase: Boolean = true,
    private val stripAccents: Boolean = true,
) {
    // Later duplicates win, as in keras-hub's token -> id map.
    private val ids: Map<String, Int> = vocabulary.withIndex().associate { it.value to it.index }
    private val longest = vocabulary.maxOf { it.codePointCount(0, it.length) }
    val padId = tokenToId("[PAD]")
    val clsId = tokenToId("[CLS]")
    val sepId = tokenToId("[SEP]")

    init {
        tokenToId(UNK)
    }

    fun tokenToId(token: String): Int =
        ids[token] ?: throw IllegalArgumentException("Token '$token' is not in vocab.txt")

    /** The piece ids of [text], without [CLS]/[SEP]. */
    fun encode(text: String): List<Int> = tokenizeWithOffsets(text).map { tokenToId(it.token) }

    /** The pieces of [text] with their code-point spans in [text]. */
    fun tokenizeWithOffsets(text: String): List<Piece> {
        // keras-hub's TensorFlow path ends a text at its first NUL.
        val chars = codePoints(text.substringBefore('\u0000'))
        val pieces = ArrayList<Piece>()
        for ((rawWord, start, end) in splitWords(chars)) {
            val word = codePoints(if (lowercase) casefoldNfkc(rawWord) else rawWord)
            if (word.isEmpty()) continue
            val sources = characterSources(chars, word, start, end)
            var position = 0
            for (piece in wordpiece(word)) {
                if (piece == UNK) {
                    pieces += Piece(piece, start, end)
                    break
                }
                val length = piece.codePointCount(0, piece.length) - (if (position > 0) SUFFIX.length else 0)
                if (sources == null) {
                    pieces += Piece(piece, start, end)
                } else {
                    val first = if (position > 0) sources[position] else start
                    val last = if (position + length < word.size) sources[position + length - 1] + 1 else end
                    pieces += Piece(piece, first, last)
                }
                position += length
            }
        }
        return pieces
    }

    /** Words (not yet case-folded) with their `[start, end)` spans in [chars]. */
    private fun splitWords(chars: List<String>): List<Triple<String, Int, Int>> {
        val words = ArrayList<Triple<String, Int, Int>>()
        val current = ArrayList<Pair<String, Int>>()  // (normalised char, original index)
        fun flush() {
            val word = current.joinToString("") { it.first }
            if (word.isNotEmpty()) words += Triple(word, current.first().second, current.last().second + 1)
            current.clear()
        }
        for ((index, original) in chars.withIndex()) {
            val normalised = if (stripAccents) removeAccents(original) else original
            // A stripped accent belongs to the word it decorates: widen the word's span.
            if (normalised.isEmpty() && current.isNotEmpty()) current += "" to index
            for (char in codePoints(normalised)) {
                when {
                    isSeparator(char) -> flush()
                    isKeptDelimiter(char) -> {
                        flush()
                        current += char to index
                        flush()
                    }
                    else -> current += char to index
                }
            }
        }
        flush()
        return words
    }

    /** For each code point of the normalised [word], the index of the original character it
     *  came from; null where normalisation mixed characters (pieces then share the word's span). */
    private fun characterSources(chars: List<String>, word: List<String>, start: Int, end: Int): List<Int>? {
        val sources = ArrayList<Int>()
        val rebuilt = StringBuilder()
        for (index in start until end) {
            var char = if (stripAccents) removeAccents(chars[index]) else chars[index]
            if (lowercase) char = casefoldNfkc(char)
            rebuilt.append(char)
            repeat(char.codePointCount(0, char.length)) { sources += index }
        }
        return if (rebuilt.toString() == word.joinToString("")) sources else null
    }

    /** Greedy longest-match-first WordPiece of one normalised word (its code points). */
    private fun wordpiece(word: List<String>): List<String> {
        if (word.joinToString("").toByteArray(Charsets.UTF_8).size > MAX_BYTES_PER_WORD) return listOf(UNK)
        val pieces = ArrayList<String>()
        var start = 0
        while (start < word.size) {
            val prefix = if (start > 0) SUFFIX else ""
            var end = minOf(word.size, start + longest)
            while (end > start && (prefix + word.subList(start, end).joinToString("")) !in ids) end--
            if (end == start) return listOf(UNK)
            pieces += prefix + word.subList(start, end).joinToString("")
            start = end
        }
        return pieces
    }

    companion object {
        const val UNK = "[UNK]"
        const val SUFFIX = "##"
        private const val MAX_BYTES_PER_WORD = 100
        private val nonSpacingMarks = Regex("\\p{Mn}+")
        private val cjkRanges = listOf(
            0x4E00..0x9FFF, 0x3400..0x4DBF, 0x20000..0x2A6DF, 0x2A700..0x2B73F,
            0x2B740..0x2B81F, 0x2B820..0x2CEAF, 0xF900..0xFAFF, 0x2F800..0x2FA1F,
        )
        // Unicode Default_Ignorable_Code_Point, which NFKC_Casefold removes.
        private val ignorableRanges = listOf(
            0x00AD..0x00AD, 0x034F..0x034F, 0x061C..0x061C, 0x115F..0x1160, 0x17B4..0x17B5,
            0x180B..0x180F, 0x200B..0x200F, 0x202A..0x202E, 0x2060..0x206F, 0x3164..0x3164,
            0xFE00..0xFE0F, 0xFEFF..0xFEFF, 0xFFA0..0xFFA0, 0xFFF0..0xFFF8, 0x1BCA0..0x1BCA3,
            0x1D173..0x1D17A, 0xE0000..0xE0FFF,
        )
        private val punctuationTypes = setOf(
            Character.CONNECTOR_PUNCTUATION, Character.DASH_PUNCTUATION, Character.START_PUNCTUATION,
            Character.END_PUNCTUATION, Character.INITIAL_QUOTE_PUNCTUATION,
            Character.FINAL_QUOTE_PUNCTUATION, Character.OTHER_PUNCTUATION,
        ).map { it.toInt() }.toSet()

        /** The code points of [text], each as a String. */
        fun codePoints(text: String): List<String> =
            text.codePoints().toArray().map { String(Character.toChars(it)) }

        /** [text] cut at code-point offsets (the offsets of [Piece], Entity and Answer). */
        fun slice(text: String, start: Int, end: Int): String =
            text.substring(text.offsetByCodePoints(0, start), text.offsetByCodePoints(0, end))

        fun removeAccents(text: String): String =
            Normalizer.normalize(text, Normalizer.Form.NFD).replace(nonSpacingMarks, "")

        private fun isSeparator(char: String): Boolean {
            val code = char.codePointAt(0)
            val type = Character.getType(code)
            return char in setOf(" ", "\t", "\n", "\r", "\u000C") ||
                type == Character.CONTROL.toInt() || type == Character.FORMAT.toInt()
        }

        private fun isKeptDelimiter(char: String): Boolean {
            val code = char.codePointAt(0)
            val asciiPunctuation = code in 0x21..0x2F || code in 0x3A..0x40 ||
                code in 0x5B..0x60 || code in 0x7B..0x7E
            return asciiPunctuation || Character.getType(code) in punctuationTypes ||
                cjkRanges.any { code in it }
        }

        /** Full case folding of one code point (Python's str.casefold): upper- then
         *  lower-casing, except dotless ı (kept), capital ẞ (-> ss) and Cherokee (-> capitals). */
        private fun foldCase(char: String): String {
            val code = char.codePointAt(0)
            if (code == 0x131) return char
            if (code in 0x13A0..0x13FF || code in 0xAB70..0xABBF) return char.uppercase(Locale.ROOT)
            val folded = char.uppercase(Locale.ROOT).lowercase(Locale.ROOT)
            return if (folded == "\u00DF") "ss" else folded
        }

        /** NFKC_Casefold, as tf_text's case_fold_utf8 (wordpiece.casefold_nfkc). */
        fun casefoldNfkc(word: String): String {
            val nfkc = Normalizer.normalize(word, Normalizer.Form.NFKC)
            val folded = Normalizer.normalize(codePoints(nfkc).joinToString("") { foldCase(it) },
                                              Normalizer.Form.NFKC)
            return codePoints(folded).filterNot { c ->
                ignorableRanges.any { c.codePointAt(0) in it }
            }.joinToString("")
        }
    }
}
