package org.tensorflow.lite;
public class Tensor { private final int[] shape; Tensor(int[] shape) { this.shape = shape; } public int[] shape() { return shape; } }
