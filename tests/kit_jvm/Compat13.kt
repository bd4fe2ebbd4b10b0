// Kotlin 1.3 (Debian's kotlinc) lacks these 1.4/1.5 standard-library functions; the sample
// targets current Kotlin. Same package, so these win over the (absent) stdlib ones.
package com.example.tinybert
import java.util.Locale
fun String.uppercase(locale: Locale): String = this.toUpperCase(locale)
fun String.lowercase(locale: Locale): String = this.toLowerCase(locale)
inline fun <T> Iterable<T>.maxOf(selector: (T) -> Int): Int = map(selector).max()!!
fun DoubleArray.max(): Double = this.reduce { a, b -> if (b > a) b else a }
