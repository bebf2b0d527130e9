package dev.logstream.spark;

import java.util.Map;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.api.java.UDF2;

/**
 * The text-level half of parsing a user event (SPEC §5.3): decode and trim the payload and read
 * its JSON object in one pass. Called by logstream.parsing as {@code
 * logstream_user_event_tokens(value, options)}; the output fields are
 * logstream.parsing.USER_EVENT_TOKENS, in this order:
 *
 * <pre>
 * looks_json, is_json, blank, user_id, action, session_id, ip_address, extra, timestamp_text,
 * value_text
 * </pre>
 *
 * {@code options} is {@code max_record_bytes, time zone} joined by U+001F.
 */
public final class UserEventTokens implements UDF2<byte[], String, Row> {
  private static final long serialVersionUID = 1L;

  private static final int LOOKS_JSON = 0;
  private static final int IS_JSON = 1;
  private static final int BLANK = 2;
  private static final int USER_ID = 3;
  private static final int ACTION = 4;
  private static final int SESSION_ID = 5;
  private static final int IP_ADDRESS = 6;
  private static final int EXTRA = 7;
  private static final int TIMESTAMP_TEXT = 8;
  private static final int VALUE_TEXT = 9;
  private static final int WIDTH = 10;

  private transient String optionsText;
  private transient int maxRecordBytes;
  private transient Records.JsonObjectReader json;

  @Override
  public Row call(byte[] value, String optionsText) {
    if (!optionsText.equals(this.optionsText)) {
      String[] parts = optionsText.split("\u001f", -1);
      if (parts.length != 2) {
        throw new IllegalArgumentException(
            "logstream_user_event_tokens: malformed options " + optionsText);
      }
      maxRecordBytes = Integer.parseInt(parts[0]);
      json = new Records.JsonObjectReader(parts[1]);
      this.optionsText = optionsText;
    }
    Object[] out = new Object[WIDTH];
    out[LOOKS_JSON] = out[IS_JSON] = out[BLANK] = false;
    if (value == null || value.length == 0 || value.length > maxRecordBytes) {
      return RowFactory.create(out);
    }
    Records.Payload payload = new Records.Payload(value);
    if (payload.isEmpty()) {
      out[BLANK] = true;
      return RowFactory.create(out);
    }
    boolean looksJson = payload.looksJson();
    out[LOOKS_JSON] = looksJson;
    if (!looksJson || !payload.endsWithBrace()) {
      return RowFactory.create(out);
    }
    boolean[] seen = new boolean[WIDTH];
    boolean ok =
        json.read(
            payload,
            (name, text) -> {
              int slot = slot(name);
              if (slot < 0) {
                @SuppressWarnings("unchecked")
                Map<String, String> extra = (Map<String, String>) out[EXTRA];
                out[EXTRA] = Records.putExtra(extra, name, text);
              } else if (!seen[slot]) { // a duplicated key: the first one counts
                seen[slot] = true;
                boolean trimmed = slot == TIMESTAMP_TEXT || slot == VALUE_TEXT;
                out[slot] = trimmed ? Records.strip(text) : text;
              }
            });
    if (ok) {
      out[IS_JSON] = true;
    } else {
      for (int i = USER_ID; i < WIDTH; i++) {
        out[i] = null;
      }
    }
    return RowFactory.create(out);
  }

  /** The output slot of a known key (logstream.parsing.USER_EVENT_JSON_KEYS), else -1. */
  private static int slot(String name) {
    switch (name) {
      case "timestamp":
        return TIMESTAMP_TEXT;
      case "user_id":
        return USER_ID;
      case "action":
        return ACTION;
      case "value":
        return VALUE_TEXT;
      case "session_id":
        return SESSION_ID;
      case "ip_address":
        return IP_ADDRESS;
      default:
        return -1;
    }
  }
}
