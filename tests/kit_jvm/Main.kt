// Driver for tests/test_kit_tokenizers.py: runs export/android's TinyBertTagger and
// TinyBertQuestionAnswerer on the JVM against the stubs in stubs/ (Android's Context and
// assets, org.json, and a fake LiteRT Interpreter whose outputs are fixed functions of its
// inputs). Texts come in hex-encoded UTF-8, one per line; results go out the same way.
package com.example.tinybert
import android.content.Context
import android.content.res.AssetManager
import java.io.File

fun hex(s: String) = s.toByteArray(Charsets.UTF_8).joinToString("") { "%02x".format(it) }
fun unhex(h: String) = String(h.chunked(2).map { it.toInt(16).toByte() }.toByteArray(), Charsets.UTF_8)

fun main(args: Array<String>) {
    val (assets, task, textsFile, outFile) = args
    val context = object : Context() { override fun getAssets() = AssetManager(File(assets)) }
    val lines = File(textsFile).readLines().map { unhex(it) }
    val out = StringBuilder()
    if (task == "ner") {
        val tagger = TinyBertTagger(context, "ner")
        for (text in lines) {
            for (p in tagger.tokenizer.tokenizeWithOffsets(text)) out.append("P\t${hex(p.token)}\t${p.start}\t${p.end}\n")
            for (e in tagger.entities(text)) out.append("E\t${e.type}\t${e.startChar}\t${e.endChar}\t${e.score}\t${hex(e.text)}\n")
            out.append("T\n")
        }
    } else {
        val qa = TinyBertQuestionAnswerer(context, "qa", stride = args[4].toInt(), maxAnswerLength = args[5].toInt())
        for ((question, ctx) in lines.chunked(2).map { it[0] to it[1] }) {
            val a = qa.answer(question, ctx)
            out.append("A\t${a.startChar}\t${a.endChar}\t${a.score}\t${hex(a.text)}\n")
        }
    }
    File(outFile).writeText(out.toString())
}
