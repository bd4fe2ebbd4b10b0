package android.content.res;
import java.io.*;
public class AssetManager {
  private final File base;
  public AssetManager(File base) { this.base = base; }
  public InputStream open(String name) throws IOException { return new FileInputStream(new File(base, name)); }
  public AssetFileDescriptor openFd(String name) throws IOException { return new AssetFileDescriptor(new File(base, name)); }
}
