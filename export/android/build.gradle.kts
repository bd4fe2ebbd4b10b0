// Module-level build.gradle.kts of an Android app that runs a tf_tinybert export.
// Only the lines marked "tf_tinybert" matter; the rest is the usual app module.
plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "com.example.tinybert"
    compileSdk = 35

    defaultConfig {
        applicationId = "com.example.tinybert"
        minSdk = 24
        targetSdk = 35
        versionCode = 1
        versionName = "1.0"
    }

    // tf_tinybert: MediaPipe and TokenModel memory-map .tflite files out of the APK, so they
    // must be stored uncompressed (src/main/assets/model.tflite, assets/ner/, assets/qa/).
    androidResources {
        noCompress += "tflite"
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions {
        jvmTarget = "17"
    }
}

dependencies {
    // tf_tinybert: MediaPipe Tasks text (TextClassifier, BERT tokenizer from the model's
    // metadata). Pin the release you tested; see export/README.md.
    implementation("com.google.mediapipe:tasks-text:0.10.21")
    // tf_tinybert: the LiteRT Interpreter (package org.tensorflow.lite) for the NER and QA
    // exports (TinyBertTagger, TinyBertQuestionAnswerer), which MediaPipe Tasks has no task for.
    implementation("com.google.ai.edge.litert:litert:1.4.1")
}
