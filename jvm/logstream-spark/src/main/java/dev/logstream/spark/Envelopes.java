package dev.logstream.spark;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Envelopes around a log record, stripped before the record is matched (SPEC §3), their metadata
 * kept in {@code extra} as {@code envelope} (cri, docker or syslog) and {@code envelope.*}:
 *
 * <ul>
 *   <li>CRI / containerd: {@code <RFC 3339 time> stdout|stderr F|P <line>}; a {@code P} line is
 *       a partial line, the rest of which is in the next record;
 *   <li>Docker's json-file driver: {@code {"log": "<line>\n", "stream": ..., "time": ...}};
 *   <li>syslog: RFC 5424 ({@code <PRI>1 TIME HOST APP PROCID MSGID SD MSG}), RFC 3164 ({@code
 *       [<PRI>]Mmm dd hh:mm:ss HOST TAG[PID]: MSG}, the year inferred from the Kafka timestamp,
 *       the time read as UTC), and rsyslog's file format with an RFC 3339 time.
 * </ul>
 *
 * The envelope's time is the event time of a record that has none of its own. Docker's other keys
 * (attrs) and RFC 5424's structured data are kept too ({@code envelope.<key>}, {@code
 * envelope.sd}).
 */
final class Envelopes {
  private Envelopes() {}

  /** A record taken out of its envelope. */
  static final class Opened {
    Records.Payload inner;
    final Map<String, String> meta = new LinkedHashMap<>();
    String time;
    boolean partial;
  }

  private static final ObjectMapper MAPPER =
      new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
  private static final DateTimeFormatter SYSLOG_TIME =
      DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss'Z'");
  private static final byte[] LOG_KEY = "\"log\"".getBytes(StandardCharsets.UTF_8);
  private static final String[] MONTHS = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
  };

  /** The record inside {@code payload}'s envelope, or null when it has none. */
  static Opened open(Records.Payload payload, Long referenceMicros) {
    byte first = payload.bytes[payload.start];
    if (first == '{') {
      return startsWithLogKey(payload) ? docker(payload) : null;
    }
    if (first == '<') {
      return syslogWithPriority(payload, referenceMicros);
    }
    if (first >= '0' && first <= '9') {
      return timeFirst(payload);
    }
    if (first >= 'A' && first <= 'S') {
      return rfc3164(payload, payload.start, referenceMicros);
    }
    return null;
  }

  /** Starts with {@code {"log"} (whitespace allowed after the brace): Docker writes it first. */
  private static boolean startsWithLogKey(Records.Payload payload) {
    int at = payload.start + 1;
    while (at < payload.end && Records.isWhitespace(payload.bytes[at])) {
      at++;
    }
    if (payload.end - at < LOG_KEY.length) {
      return false;
    }
    for (int i = 0; i < LOG_KEY.length; i++) {
      if (payload.bytes[at + i] != LOG_KEY[i]) {
        return false;
      }
    }
    return true;
  }

  private static Opened docker(Records.Payload payload) {
    JsonNode node;
    try {
      node = MAPPER.readTree(payload.bytes, payload.start, payload.end - payload.start);
    } catch (java.io.IOException | RuntimeException e) {
      return null;
    }
    JsonNode log = node.get("log");
    if (log == null || !log.isTextual() || node.get("stream") == null) {
      return null;
    }
    Opened opened = new Opened();
    byte[] inner = log.asText().getBytes(StandardCharsets.UTF_8);
    opened.inner = new Records.Payload(inner, 0, -1);
    opened.meta.put("envelope", "docker");
    opened.meta.put("envelope.stream", node.get("stream").asText());
    JsonNode time = node.get("time");
    if (time != null && time.isTextual()) {
      opened.time = time.asText();
      opened.meta.put("envelope.time", opened.time);
    }
    Iterator<Map.Entry<String, JsonNode>> fields = node.fields();
    while (fields.hasNext()) { // attrs (labels, tags) and whatever else the driver added
      Map.Entry<String, JsonNode> field = fields.next();
      String name = field.getKey();
      if (!name.equals("log") && !name.equals("stream") && !name.equals("time")) {
        JsonNode value = field.getValue();
        opened.meta.put("envelope." + name, value.isTextual() ? value.asText() : value.toString());
      }
    }
    return opened;
  }

  /** A CRI line, or an rsyslog file line with an RFC 3339 time. */
  private static Opened timeFirst(Records.Payload payload) {
    int space = indexOf(payload, (byte) ' ', payload.start);
    if (space < 0 || space - payload.start < 20 || payload.bytes[payload.start + 10] != 'T') {
      return null;
    }
    String time = text(payload, payload.start, space);
    int streamEnd = indexOf(payload, (byte) ' ', space + 1);
    String stream = streamEnd < 0 ? null : text(payload, space + 1, streamEnd);
    if ("stdout".equals(stream) || "stderr".equals(stream)) {
      int tagEnd = indexOf(payload, (byte) ' ', streamEnd + 1);
      int end = tagEnd < 0 ? payload.end : tagEnd;
      String tag = text(payload, streamEnd + 1, end);
      if (!tag.equals("F") && !tag.equals("P") && !tag.startsWith("F:") && !tag.startsWith("P:")) {
        return null;
      }
      Opened opened = new Opened();
      opened.inner = new Records.Payload(payload.bytes, tagEnd < 0 ? payload.end : tagEnd + 1,
          payload.end);
      opened.partial = tag.charAt(0) == 'P';
      opened.time = time;
      opened.meta.put("envelope", "cri");
      opened.meta.put("envelope.stream", stream);
      opened.meta.put("envelope.time", time);
      return opened;
    }
    return hostAndTag(payload, streamEnd < 0 ? -1 : space + 1, time);
  }

  private static Opened syslogWithPriority(Records.Payload payload, Long referenceMicros) {
    int close = indexOf(payload, (byte) '>', payload.start);
    if (close < 0 || close - payload.start > 4 || close == payload.start + 1) {
      return null;
    }
    for (int i = payload.start + 1; i < close; i++) {
      if (payload.bytes[i] < '0' || payload.bytes[i] > '9') {
        return null;
      }
    }
    String priority = text(payload, payload.start + 1, close);
    int from = close + 1;
    Opened opened;
    if (from + 1 < payload.end && payload.bytes[from] == '1' && payload.bytes[from + 1] == ' ') {
      opened = rfc5424(payload, from + 2);
    } else {
      opened = rfc3164(payload, from, referenceMicros);
    }
    if (opened != null) {
      opened.meta.put("envelope.priority", priority);
    }
    return opened;
  }

  private static Opened rfc5424(Records.Payload payload, int from) {
    String[] header = new String[5]; // time, host, app, procid, msgid
    int at = from;
    for (int i = 0; i < header.length; i++) {
      int space = indexOf(payload, (byte) ' ', at);
      if (space < 0) {
        return null;
      }
      header[i] = text(payload, at, space);
      at = space + 1;
    }
    // structured data: "-" or one or more [id param="value" ...] elements
    int structured = at;
    if (at < payload.end && payload.bytes[at] == '-') {
      at++;
    } else {
      while (at < payload.end && payload.bytes[at] == '[') {
        boolean quoted = false;
        at++;
        while (at < payload.end) {
          byte b = payload.bytes[at];
          if (b == '\\' && quoted) {
            at += 2;
            continue;
          }
          if (b == '"') {
            quoted = !quoted;
          } else if (b == ']' && !quoted) {
            break;
          }
          at++;
        }
        at++;
      }
    }
    String structuredData = text(payload, structured, Math.min(at, payload.end));
    if (at < payload.end && payload.bytes[at] == ' ') {
      at++;
    }
    // an optional UTF-8 byte order mark before the message
    if (at + 2 < payload.end && (payload.bytes[at] & 0xff) == 0xef
        && (payload.bytes[at + 1] & 0xff) == 0xbb && (payload.bytes[at + 2] & 0xff) == 0xbf) {
      at += 3;
    }
    Opened opened = new Opened();
    opened.inner = new Records.Payload(payload.bytes, Math.min(at, payload.end), payload.end);
    opened.meta.put("envelope", "syslog");
    put(opened, "envelope.time", header[0]);
    put(opened, "envelope.host", header[1]);
    put(opened, "envelope.app", header[2]);
    put(opened, "envelope.pid", header[3]);
    put(opened, "envelope.msgid", header[4]);
    put(opened, "envelope.sd", structuredData);
    opened.time = "-".equals(header[0]) ? null : header[0];
    return opened;
  }

  private static void put(Opened opened, String name, String value) {
    if (value != null && !value.equals("-")) {
      opened.meta.put(name, value);
    }
  }

  /** {@code Mmm dd hh:mm:ss HOST TAG: MSG} from {@code from}. */
  private static Opened rfc3164(Records.Payload payload, int from, Long referenceMicros) {
    if (payload.end - from < 16 || payload.bytes[from + 3] != ' '
        || payload.bytes[from + 6] != ' ' || payload.bytes[from + 9] != ':'
        || payload.bytes[from + 12] != ':' || payload.bytes[from + 15] != ' ') {
      return null;
    }
    String month = text(payload, from, from + 3);
    int monthIndex = -1;
    for (int i = 0; i < MONTHS.length; i++) {
      if (MONTHS[i].equals(month)) {
        monthIndex = i;
      }
    }
    String stamp = text(payload, from + 4, from + 15);
    if (monthIndex < 0 || !stamp.matches("[ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}")) {
      return null;
    }
    Opened opened = hostAndTag(payload, from + 16, null);
    if (opened == null) {
      return null;
    }
    try {
      LocalDateTime reference = referenceMicros == null
          ? LocalDateTime.now(ZoneOffset.UTC)
          : LocalDateTime.ofEpochSecond(Math.floorDiv(referenceMicros, 1_000_000L), 0,
              ZoneOffset.UTC);
      int day = Integer.parseInt(stamp.substring(0, 2).trim());
      LocalDateTime time = LocalDateTime.of(reference.getYear(), monthIndex + 1, day,
          Integer.parseInt(stamp.substring(3, 5)), Integer.parseInt(stamp.substring(6, 8)),
          Integer.parseInt(stamp.substring(9, 11)));
      if (time.isAfter(reference.plusDays(7))) { // December's lines read in January
        time = time.minusYears(1);
      }
      opened.time = time.format(SYSLOG_TIME);
    } catch (RuntimeException e) {
      opened.time = null; // e.g. Feb 30: the record's own time, if any, still counts
    }
    opened.meta.put("envelope.time", month + " " + stamp);
    return opened;
  }

  /** {@code HOST TAG[PID]: MSG} from {@code from} (the time before it already read). */
  private static Opened hostAndTag(Records.Payload payload, int from, String time) {
    if (from < 0) {
      return null;
    }
    int hostEnd = indexOf(payload, (byte) ' ', from);
    if (hostEnd < 0 || hostEnd == from) {
      return null;
    }
    int colon = indexOf(payload, (byte) ':', hostEnd + 1);
    int space = indexOf(payload, (byte) ' ', hostEnd + 1);
    if (colon < 0 || (space >= 0 && space < colon) || colon == hostEnd + 1) {
      return null;
    }
    String tag = text(payload, hostEnd + 1, colon);
    String pid = null;
    int bracket = tag.indexOf('[');
    if (bracket > 0 && tag.endsWith("]")) {
      pid = tag.substring(bracket + 1, tag.length() - 1);
      tag = tag.substring(0, bracket);
    }
    Opened opened = new Opened();
    opened.inner = new Records.Payload(payload.bytes, Math.min(colon + 1, payload.end),
        payload.end);
    opened.meta.put("envelope", "syslog");
    if (time != null) {
      opened.time = time;
      opened.meta.put("envelope.time", time);
    }
    opened.meta.put("envelope.host", text(payload, from, hostEnd));
    opened.meta.put("envelope.app", tag);
    if (pid != null) {
      opened.meta.put("envelope.pid", pid);
    }
    return opened;
  }

  private static int indexOf(Records.Payload payload, byte b, int from) {
    for (int i = from; i < payload.end; i++) {
      if (payload.bytes[i] == b) {
        return i;
      }
    }
    return -1;
  }

  private static String text(Records.Payload payload, int from, int to) {
    return new String(payload.bytes, from, to - from, StandardCharsets.UTF_8);
  }
}
