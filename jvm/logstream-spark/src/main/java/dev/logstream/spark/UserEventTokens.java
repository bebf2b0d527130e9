package dev.logstream.spark;

import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.api.java.UDF2;

/**
 * The text-level half of parsing a user event (SPEC §5.3): decode and trim the payload and read
 * its JSON object in one pass. Called by logstream.parsing as {@code
 * logstream_user_event_tokens(value, max_record_bytes)}; the output fields are
 * logstream.parsing.USER_EVENT_TOKENS, in this order:
 *
 * <pre>
 * looks_json, is_json, blank, user_id, action, session_id, ip_address, extra, timestamp_text,
 * value_text, epoch_micros
 * </pre>
 *
 * {@code epoch_micros} is the event time when the timestamp is an epoch number ({@link
 * Values#epochMicros}).
 */
public final class UserEventTokens implements UDF2<byte[], Integer, Row> {
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
  private static final int EPOCH_MICROS = 10;
  private static final int WIDTH = 11;

  /** The JSON keys that become fields; any other key goes to {@code extra}. */
  private static final Records.JsonFields JSON_FIELDS =
      new Records.JsonFields(
          Map.of(
              "timestamp", TIMESTAMP_TEXT,
              "user_id", USER_ID,
              "action", ACTION,
              "value", VALUE_TEXT,
              "session_id", SESSION_ID,
              "ip_address", IP_ADDRESS),
          Set.of(TIMESTAMP_TEXT, VALUE_TEXT),
          EXTRA,
          WIDTH);

  private transient Records.JsonObjectReader json;

  @Override
  public Row call(byte[] value, Integer maxRecordBytes) {
    if (json == null) {
      json = new Records.JsonObjectReader();
    }
    Object[] out = new Object[WIDTH];
    out[LOOKS_JSON] = out[IS_JSON] = out[BLANK] = false;
    Records.Payload payload = Records.Payload.of(value, maxRecordBytes);
    if (payload == null) {
      return RowFactory.create(out);
    }
    if (payload.isEmpty()) {
      out[BLANK] = true;
      return RowFactory.create(out);
    }
    boolean looksJson = payload.looksJson();
    out[LOOKS_JSON] = looksJson;
    if (looksJson && payload.endsWithBrace() && JSON_FIELDS.read(json, payload, out)) {
      out[IS_JSON] = true;
      out[EPOCH_MICROS] = Values.epochMicros((String) out[TIMESTAMP_TEXT]);
    } else {
      Arrays.fill(out, USER_ID, WIDTH, null);
    }
    return RowFactory.create(out);
  }
}
