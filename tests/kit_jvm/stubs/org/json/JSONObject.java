package org.json;
import java.util.regex.*;
// Just enough of org.json for the flat export.json of this check.
public class JSONObject {
  private final String text;
  public JSONObject(String text) { this.text = text; }
  public JSONObject() { this("{}"); }
  public String optString(String key) { Matcher m = Pattern.compile("\"" + key + "\"\\s*:\\s*\"([^\"]*)\"").matcher(text); return m.find() ? m.group(1) : ""; }
  public JSONObject optJSONObject(String key) { Matcher m = Pattern.compile("\"" + key + "\"\\s*:\\s*(\\{[^}]*\\})").matcher(text); return m.find() ? new JSONObject(m.group(1)) : null; }
  public boolean optBoolean(String key, boolean fallback) { Matcher m = Pattern.compile("\"" + key + "\"\\s*:\\s*(true|false)").matcher(text); return m.find() ? m.group(1).equals("true") : fallback; }
}
