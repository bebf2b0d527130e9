package dev.logstream.spark;

import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.api.java.UDF6;

/**
 * The text-level half of parsing a log record (SPEC §3), one pass per record: decode and trim the
 * payload, detect its format, read the JSON object or match the access-log line, and return the
 * fields as text. Typing and validation stay in Spark SQL (logstream.parsing), which calls this
 * as {@code logstream_log_tokens(value, key, format, max_record_bytes, default_service,
 * access_log_pattern)}; the output fields are logstream.parsing.LOG_TOKENS, in this order:
 *
 * <pre>
 * looks_json, is_json, is_access, blank, level, service, message, ip_address, user_id,
 * request_id, error_code, http_method, path, protocol, referrer, user_agent, extra,
 * source_format, timestamp_text, status_text, response_time_text, bytes_text
 * </pre>
 *
 * A null, empty or oversized payload yields false flags and null fields (logstream.parsing
 * rejects it from the Kafka value itself).
 */
public final class LogTokens
    implements UDF6<byte[], byte[], String, Integer, String, String, Row> {
  private static final long serialVersionUID = 1L;

  static final int LOOKS_JSON = 0;
  static final int IS_JSON = 1;
  static final int IS_ACCESS = 2;
  static final int BLANK = 3;
  static final int LEVEL = 4;
  static final int SERVICE = 5;
  static final int MESSAGE = 6;
  static final int IP_ADDRESS = 7;
  static final int USER_ID = 8;
  static final int REQUEST_ID = 9;
  static final int ERROR_CODE = 10;
  static final int HTTP_METHOD = 11;
  static final int PATH = 12;
  static final int PROTOCOL = 13;
  static final int REFERRER = 14;
  static final int USER_AGENT = 15;
  static final int EXTRA = 16;
  static final int SOURCE_FORMAT = 17;
  static final int TIMESTAMP_TEXT = 18;
  static final int STATUS_TEXT = 19;
  static final int RESPONSE_TIME_TEXT = 20;
  static final int BYTES_TEXT = 21;
  static final int WIDTH = 22;

  /** The JSON keys that become fields; any other key goes to {@code extra}. */
  private static final Records.JsonFields JSON_FIELDS =
      new Records.JsonFields(
          Map.ofEntries(
              Map.entry("level", LEVEL),
              Map.entry("service", SERVICE),
              Map.entry("message", MESSAGE),
              Map.entry("ip_address", IP_ADDRESS),
              Map.entry("user_id", USER_ID),
              Map.entry("request_id", REQUEST_ID),
              Map.entry("error_code", ERROR_CODE),
              Map.entry("http_method", HTTP_METHOD),
              Map.entry("path", PATH),
              Map.entry("protocol", PROTOCOL),
              Map.entry("referrer", REFERRER),
              Map.entry("user_agent", USER_AGENT),
              Map.entry("timestamp", TIMESTAMP_TEXT),
              Map.entry("status_code", STATUS_TEXT),
              Map.entry("response_time", RESPONSE_TIME_TEXT),
              Map.entry("bytes_sent", BYTES_TEXT)),
          Set.of(TIMESTAMP_TEXT, STATUS_TEXT, RESPONSE_TIME_TEXT, BYTES_TEXT),
          EXTRA,
          WIDTH);

  private static final Pattern UNESCAPE = Pattern.compile("\\\\([\"\\\\])");

  private transient Records.JsonObjectReader json;
  private transient String accessLogText;
  private transient Pattern accessLog;

  @Override
  public Row call(
      byte[] value,
      byte[] key,
      String format,
      Integer maxRecordBytes,
      String defaultService,
      String accessLogPattern) {
    if (json == null) {
      json = new Records.JsonObjectReader();
    }
    if (!accessLogPattern.equals(accessLogText)) {
      accessLog = Pattern.compile(accessLogPattern);
      accessLogText = accessLogPattern;
    }
    Object[] out = new Object[WIDTH];
    out[LOOKS_JSON] = out[IS_JSON] = out[IS_ACCESS] = out[BLANK] = false;
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
    if (looksJson) {
      boolean tryJson = format.equals("auto") || format.equals("json");
      if (tryJson && payload.endsWithBrace() && JSON_FIELDS.read(json, payload, out)) {
        out[IS_JSON] = true;
        out[SOURCE_FORMAT] = "json";
      } else {
        Arrays.fill(out, LEVEL, WIDTH, null);
      }
    } else if (!format.equals("json") && !payload.contains((byte) 1)) {
      readAccessLog(payload.text(), key, format, defaultService, out);
    }
    return RowFactory.create(out);
  }

  /**
   * The access-log pattern's 12 groups (see logstream.parsing._ACCESS_LOG), read as Spark's
   * {@code regexp_replace} + {@code split} did: a group that did not take part is empty text, and
   * whatever follows the match (only a final line terminator can) is appended to group 12.
   */
  private void readAccessLog(
      String payload, byte[] key, String format, String defaultService, Object[] out) {
    Matcher match = accessLog.matcher(payload);
    if (!match.find()) {
      return;
    }
    String[] group = new String[13];
    for (int i = 1; i <= 12; i++) {
      String text = match.group(i);
      group[i] = text == null ? "" : text;
    }
    group[12] = group[12] + payload.substring(match.end());
    if (format.equals("apache") && !group[12].isEmpty()) {
      return; // Common or Combined, nothing appended
    }
    if (format.equals("nginx") && group[10].isEmpty()) {
      return; // combined, optionally with $request_time
    }
    out[IS_ACCESS] = true;
    String service = key == null ? "" : Records.strip(Records.decode(key));
    out[SERVICE] = service.isEmpty() ? defaultService : service;
    out[MESSAGE] = unescape(group[4]);
    out[IP_ADDRESS] = dashNull(group[1]);
    out[USER_ID] = dashNull(group[2]);
    out[HTTP_METHOD] = dashNull(group[5]);
    out[PATH] = unescape(dashNull(group[6]));
    out[PROTOCOL] = dashNull(group[7]);
    String quotedReferrer = group[10];
    String referrer =
        quotedReferrer.length() >= 2 ? quotedReferrer.substring(1, quotedReferrer.length() - 1) : "";
    out[REFERRER] = unescape(dashNull(referrer));
    out[USER_AGENT] = unescape(dashNull(group[11]));
    out[SOURCE_FORMAT] = "access";
    out[TIMESTAMP_TEXT] = group[3];
    out[STATUS_TEXT] = group[8];
    out[RESPONSE_TIME_TEXT] = dashNull(group[12]);
    out[BYTES_TEXT] = dashNull(group[9]);
  }

  /** Null for the access-log placeholder {@code -} and for empty text. */
  private static String dashNull(String text) {
    return text == null || text.isEmpty() || text.equals("-") ? null : text;
  }

  /** Undoes the {@code \"} and {@code \\} escapes of a quoted access-log field. */
  private static String unescape(String text) {
    if (text == null || text.indexOf('\\') < 0) {
      return text;
    }
    return UNESCAPE.matcher(text).replaceAll("$1");
  }
}
