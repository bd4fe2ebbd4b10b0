package com.example.tinybert

import android.app.Activity
import android.os.Bundle
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.TextView
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/** A text box, a button and the model's answer: the smallest complete app around the model. */
class MainActivity : Activity() {

    // One worker thread owns the classifier: it loads, classifies and closes it in order.
    private val worker: ExecutorService = Executors.newSingleThreadExecutor()
    private var classifier: TinyBertClassifier? = null

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val input = EditText(this).apply { setText("a gorgeous, witty film") }
        val button = Button(this).apply { text = "Classify" }
        val output = TextView(this)
        setContentView(
            LinearLayout(this).apply {
                orientation = LinearLayout.VERTICAL
                setPadding(48, 48, 48, 48)
                addView(input)
                addView(button)
                addView(output)
            },
        )

        worker.execute { classifier = TinyBertClassifier(applicationContext) }
        button.setOnClickListener {
            val text = input.text.toString()
            worker.execute {
                val labels = classifier?.classify(text).orEmpty()
                val report = labels.joinToString("\n") { "%-12s %.4f".format(it.name, it.score) }
                runOnUiThread { output.text = report }
            }
        }
    }

    override fun onDestroy() {
        worker.execute { classifier?.close() }
        worker.shutdown()
        super.onDestroy()
    }
}
