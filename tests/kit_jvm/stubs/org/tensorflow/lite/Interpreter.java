package org.tensorflow.lite;
import java.nio.ByteBuffer;
import java.util.Map;
// A fake with the real Interpreter's method signatures: outputs are fixed functions of the
// inputs (fakeLogit), so that Python can compute the same numbers. Task and shapes come from
// system properties (fake.task = ner | qa, fake.length, fake.tags).
public class Interpreter implements AutoCloseable {
  public static class Options { public Options setNumThreads(int n) { return this; } }
  final String task = System.getProperty("fake.task");
  final int length = Integer.getInteger("fake.length");
  final int tags = Integer.getInteger("fake.tags", 1);
  public Interpreter(ByteBuffer model, Options options) { if (model.capacity() == 0) throw new IllegalArgumentException("empty model"); }
  public String[] getSignatureKeys() { return new String[] {"other", "serving_default"}; }
  public String[] getSignatureInputs(String key) { return key.equals("other") ? new String[] {"x"} : new String[] {"input_mask", "input_type_ids", "input_word_ids"}; }
  public String[] getSignatureOutputs(String key) { return task.equals("ner") ? new String[] {"probability"} : new String[] {"end_logits", "start_logits"}; }
  public Tensor getInputTensorFromSignature(String name, String key) { return new Tensor(new int[] {1, length}); }
  public Tensor getOutputTensorFromSignature(String name, String key) { return task.equals("ner") ? new Tensor(new int[] {1, length, tags}) : new Tensor(new int[] {1, length}); }
  public static double fakeLogit(int kind, int id, int position, int type, int mask) {
    return 3.0 * Math.sin(0.37 * id * (kind + 1) + 0.11 * position + 0.7 * type + 0.5 * mask + kind);
  }
  public void runSignature(Map<String, Object> inputs, Map<String, Object> outputs, String key) {
    if (!key.equals("serving_default")) throw new IllegalArgumentException(key);
    int[] ids = ((int[][]) inputs.get("input_word_ids"))[0];
    int[] mask = ((int[][]) inputs.get("input_mask"))[0];
    int[] types = ((int[][]) inputs.get("input_type_ids"))[0];
    if (ids.length != length || mask.length != length || types.length != length) throw new IllegalArgumentException("shape");
    if (task.equals("ner")) {
      float[][] out = ((float[][][]) outputs.get("probability"))[0];
      for (int i = 0; i < length; i++) {
        double[] e = new double[tags]; double sum = 0;
        for (int t = 0; t < tags; t++) { e[t] = Math.exp(fakeLogit(t, ids[i], i, types[i], mask[i])); sum += e[t]; }
        for (int t = 0; t < tags; t++) out[i][t] = (float) (e[t] / sum);
      }
    } else {
      float[] start = ((float[][]) outputs.get("start_logits"))[0];
      float[] end = ((float[][]) outputs.get("end_logits"))[0];
      for (int i = 0; i < length; i++) { start[i] = (float) fakeLogit(0, ids[i], i, types[i], mask[i]); end[i] = (float) fakeLogit(1, ids[i], i, types[i], mask[i]); }
    }
  }
  public void close() {}
}
