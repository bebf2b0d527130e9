package dev.logstream.spark;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.api.java.UDF5;

/**
 * The text-level half of parsing a log record (SPEC §3), one pass per record: decode and trim the
 * payload, strip its envelope ({@link Envelopes}), then read it with the first of its candidate
 * formats that fits (JSON field mappings for a JSON object, compiled access-log formats for a
 * line), and return the fields as text. Typing and validation stay in Spark SQL
 * (logstream.parsing), which calls this as {@code logstream_log_tokens(value, key, topic,
 * kafka_timestamp_micros, spec)}, {@code spec} being the JSON of logstream.formats.parse_spec (read
 * once per task). The output fields are logstream.parsing.LOG_TOKENS, in this order:
 *
 * <pre>
 * is_json, is_access, blank, problem, problem_detail, level, service, message, ip_address,
 * user_id, request_id, error_code, http_method, path, protocol, referrer, user_agent, vhost,
 * forwarded_for, extra, source_format, timestamp_text, time_layout, status_text,
 * response_time_text, bytes_text, epoch_micros
 * </pre>
 *
 * {@code epoch_micros} is the event time when {@code timestamp_text} is an epoch number
 * ({@link Values#epochMicros}).
 *
 * {@code problem} is a quarantine reason found at this level (invalid_json, unrecognized_format,
 * partial_line) with its detail. A null, empty or oversized payload yields false flags and null
 * fields (logstream.parsing rejects it from the Kafka value itself).
 */
public final class LogTokens implements UDF5<byte[], byte[], String, Long, byte[], Row> {
  private static final long serialVersionUID = 1L;

  static final int IS_JSON = 0;
  static final int IS_ACCESS = 1;
  static final int BLANK = 2;
  static final int PROBLEM = 3;
  static final int PROBLEM_DETAIL = 4;
  static final int LEVEL = 5;
  static final int SERVICE = 6;
  static final int MESSAGE = 7;
  static final int IP_ADDRESS = 8;
  static final int USER_ID = 9;
  static final int REQUEST_ID = 10;
  static final int ERROR_CODE = 11;
  static final int HTTP_METHOD = 12;
  static final int PATH = 13;
  static final int PROTOCOL = 14;
  static final int REFERRER = 15;
  static final int USER_AGENT = 16;
  static final int VHOST = 17;
  static final int FORWARDED_FOR = 18;
  static final int EXTRA = 19;
  static final int SOURCE_FORMAT = 20;
  static final int TIMESTAMP_TEXT = 21;
  static final int TIME_LAYOUT = 22;
  static final int STATUS_TEXT = 23;
  static final int RESPONSE_TIME_TEXT = 24;
  static final int BYTES_TEXT = 25;
  static final int EPOCH_MICROS = 26;
  static final int WIDTH = 27;

  /** JSON-mapped text columns and their slots (ParseSpec.JsonFormat.textPaths, in order). */
  static final String[] TEXT_COLUMNS = {
    "service", "message", "ip_address", "user_id", "request_id", "error_code", "http_method",
    "path", "protocol", "referrer", "user_agent", "vhost", "forwarded_for"
  };
  private static final int[] TEXT_SLOTS = {
    SERVICE, MESSAGE, IP_ADDRESS, USER_ID, REQUEST_ID, ERROR_CODE, HTTP_METHOD, PATH, PROTOCOL,
    REFERRER, USER_AGENT, VHOST, FORWARDED_FOR
  };

  private transient Records.JsonObjectReader json;
  private transient byte[] specBytes;
  private transient ParseSpec spec;
  private transient JsonRecord jsonRecord;

  @Override
  public Row call(byte[] value, byte[] key, String topic, Long kafkaMicros, byte[] specJson) {
    if (json == null) {
      json = new Records.JsonObjectReader();
    }
    if (specJson != specBytes && !Arrays.equals(specJson, specBytes)) {
      spec = new ParseSpec(specJson);
      specBytes = specJson;
      jsonRecord = new JsonRecord(spec);
    }
    Object[] out = new Object[WIDTH];
    out[IS_JSON] = out[IS_ACCESS] = out[BLANK] = false;
    Records.Payload payload = Records.Payload.of(value, spec.maxRecordBytes);
    if (payload == null) {
      return RowFactory.create(out);
    }
    if (payload.isEmpty()) {
      out[BLANK] = true;
      return RowFactory.create(out);
    }
    ParseSpec.Candidates candidates =
        spec.byKey.isEmpty() ? spec.candidates(null, topic) : spec.candidates(keyText(key), topic);
    Envelopes.Opened envelope = Envelopes.open(payload, kafkaMicros);
    Records.Payload record = payload;
    if (envelope != null) {
      record = envelope.inner;
      if (envelope.partial) {
        problem(out, "partial_line", "a CRI partial line (tag P): the rest of the line is in the"
            + " next record; the container runtime split a line longer than its buffer");
        return RowFactory.create(out);
      }
      if (record.isEmpty()) {
        out[BLANK] = true;
        return RowFactory.create(out);
      }
    }
    boolean bracket = !record.isEmpty() && record.bytes[record.start] == '[';
    if (record.looksJson() && !(bracket && !candidates.access.isEmpty())) {
      readJson(record, candidates, out);
    } else if (candidates.access.isEmpty()) {
      problem(out, "invalid_json", "the payload is expected to be JSON but does not start with '{'");
    } else if (!record.contains((byte) 1)) {
      readAccessLog(record.text(), candidates, out);
      if (bracket && out[PROBLEM] != null && !candidates.json.isEmpty()) {
        // a line in brackets that no access format reads: a JSON array, not a JSON object
        problem(out, "invalid_json", "the payload starts like JSON but is not a valid JSON object");
      }
    } else {
      unrecognized(out, candidates);
    }
    if (out[PROBLEM] == null) {
      if (out[SERVICE] == null || Records.strip((String) out[SERVICE]).isEmpty()) {
        out[SERVICE] = spec.fallbackService(keyText(key), topic);
      }
      out[IP_ADDRESS] = spec.clients.client((String) out[IP_ADDRESS], (String) out[FORWARDED_FOR]);
      if (envelope != null) {
        if (out[TIMESTAMP_TEXT] == null && envelope.time != null) {
          out[TIMESTAMP_TEXT] = envelope.time;
          out[TIME_LAYOUT] = null;
        }
        @SuppressWarnings("unchecked")
        Map<String, String> extra = (Map<String, String>) out[EXTRA];
        Map<String, String> merged = new LinkedHashMap<>(envelope.meta);
        if (extra != null) {
          merged.putAll(extra);
        }
        out[EXTRA] = merged;
      }
      if (out[TIME_LAYOUT] == null) {
        out[EPOCH_MICROS] = Values.epochMicros((String) out[TIMESTAMP_TEXT]);
      }
    }
    return RowFactory.create(out);
  }

  /** The Kafka key as text, null when absent or blank (decoded only when it is needed). */
  private static String keyText(byte[] key) {
    if (key == null || key.length == 0) {
      return null;
    }
    String text = Records.strip(Records.decode(key));
    return text.isEmpty() ? null : text;
  }

  private static void problem(Object[] out, String reason, String detail) {
    Arrays.fill(out, LEVEL, WIDTH, null);
    out[IS_JSON] = out[IS_ACCESS] = false;
    out[PROBLEM] = reason;
    out[PROBLEM_DETAIL] = detail;
  }

  private static void unrecognized(Object[] out, ParseSpec.Candidates candidates) {
    String names = candidates.accessNames.length() > 300
        ? candidates.accessNames.substring(0, 300) + "..." : candidates.accessNames;
    problem(out, "unrecognized_format", (candidates.json.isEmpty()
        ? "the payload is not a line in any of the access-log formats tried ("
        : "the payload is neither a JSON object nor a line in any access-log format tried (")
        + names + ")");
  }

  // -- JSON ---------------------------------------------------------------------------------

  private void readJson(Records.Payload payload, ParseSpec.Candidates candidates, Object[] out) {
    if (candidates.json.isEmpty()) {
      problem(out, "unrecognized_format", "the payload starts like JSON but only access-log"
          + " formats are configured for it (" + candidates.accessNames + ")");
      return;
    }
    JsonRecord record = jsonRecord;
    record.reset();
    int read = payload.endsWithBrace() ? json.readObject(payload, record)
        : Records.JsonObjectReader.NOT_OBJECT;
    if (read == Records.JsonObjectReader.TRAILING) {
      problem(out, "invalid_json", "the payload is a JSON object followed by more content"
          + " (two records on one line?); one record per Kafka message");
      return;
    }
    if (read != Records.JsonObjectReader.OBJECT) {
      problem(out, "invalid_json", "the payload starts like JSON but is not a valid JSON object");
      return;
    }
    ParseSpec.JsonFormat format = candidates.fallbackJson;
    for (ParseSpec.JsonFormat candidate : candidates.json) {
      if (detects(record, candidate)) {
        format = candidate;
        break;
      }
    }
    for (int i = 0; i < TEXT_COLUMNS.length; i++) {
      out[TEXT_SLOTS[i]] = lookup(record, format.textPaths[i], false);
    }
    String level = lookup(record, format.levelPaths, false);
    out[LEVEL] = Values.level(level == null ? format.defaultLevel : level, format.levelScale);
    out[STATUS_TEXT] = lookup(record, format.statusPaths, true);
    out[BYTES_TEXT] = lookup(record, format.bytesPaths, true);
    out[RESPONSE_TIME_TEXT] =
        Values.seconds(lookup(record, format.responseTimePaths, true), format.responseTimeUnit);
    String request = lookup(record, format.requestPaths, false);
    if (request != null) {
      if (out[MESSAGE] == null) {
        out[MESSAGE] = request;
      }
      String[] parts = Values.request(request);
      if (parts != null) {
        out[HTTP_METHOD] = out[HTTP_METHOD] == null ? parts[0] : out[HTTP_METHOD];
        out[PATH] = out[PATH] == null ? parts[1] : out[PATH];
        out[PROTOCOL] = out[PROTOCOL] == null ? parts[2] : out[PROTOCOL];
      }
    }
    readJsonTime(record, format, out);
    out[EXTRA] = record.rest();
    out[IS_JSON] = true;
    out[SOURCE_FORMAT] = format.name;
  }

  private static boolean detects(JsonRecord record, ParseSpec.JsonFormat format) {
    for (ParseSpec.Path path : format.detect) {
      if (!record.has(path)) {
        return false;
      }
    }
    return format.detect.length > 0;
  }

  /** The value at the first path that holds one (trimmed if {@code trim}). */
  private static String lookup(JsonRecord record, ParseSpec.Path[] paths, boolean trim) {
    for (ParseSpec.Path path : paths) {
      String found = record.take(path);
      if (found != null) {
        return trim ? Records.strip(found) : found;
      }
    }
    return null;
  }

  private static void readJsonTime(JsonRecord record, ParseSpec.JsonFormat format, Object[] out) {
    for (ParseSpec.Path[] paths : format.timestampPaths) {
      String text;
      if (paths.length == 2) {
        String seconds = record.take(paths[0]);
        text = Values.secondsPlusNanos(seconds, record.take(paths[1]));
      } else {
        text = record.take(paths[0]);
        if (text != null) {
          text = Records.strip(text);
          switch (format.timestampUnit) {
            case "auto":
              text = Values.isoTime(text);
              break;
            case "clf":
              out[TIME_LAYOUT] = "clf";
              break;
            case "s+ns":
              break;
            default:
              text = Values.seconds(text, format.timestampUnit);
          }
        }
      }
      if (text != null) {
        out[TIMESTAMP_TEXT] = text;
        return;
      }
    }
  }

  // -- access logs ------------------------------------------------------------------------

  private void readAccessLog(String line, ParseSpec.Candidates candidates, Object[] out) {
    for (ParseSpec.AccessFormat format : candidates.access) {
      Matcher match = format.pattern.matcher(line);
      if (match.matches()) {
        readGroups(match, format, out);
        return;
      }
    }
    unrecognized(out, candidates);
  }

  private static void readGroups(Matcher match, ParseSpec.AccessFormat format, Object[] out) {
    Map<String, String> extra = null;
    for (int i = 0; i < format.targets.length; i++) {
      String target = format.targets[i];
      String raw = match.group(i + 1);
      String text = Values.dashNull(raw);
      switch (target) {
        case "client":
          out[IP_ADDRESS] = text;
          if (text != null && text.indexOf(',') >= 0 && out[FORWARDED_FOR] == null) {
            out[FORWARDED_FOR] = text;
          }
          break;
        case "forwarded_for":
          if (text != null) {
            out[FORWARDED_FOR] = Values.unescape(text);
          }
          break;
        case "request":
          out[MESSAGE] = Values.unescape(raw);
          String[] parts = Values.request(raw);
          if (parts != null) {
            out[HTTP_METHOD] = parts[0];
            out[PATH] = parts[1];
            out[PROTOCOL] = parts[2];
          }
          break;
        case "time_clf":
          out[TIMESTAMP_TEXT] = raw;
          out[TIME_LAYOUT] = "clf";
          break;
        case "time_iso":
        case "time_epoch_s":
          out[TIMESTAMP_TEXT] = raw;
          out[TIME_LAYOUT] = null;
          break;
        case "status":
          out[STATUS_TEXT] = raw;
          break;
        case "bytes":
          out[BYTES_TEXT] = text;
          break;
        case "response_time_s":
          out[RESPONSE_TIME_TEXT] = text;
          break;
        case "response_time_ms":
          out[RESPONSE_TIME_TEXT] = Values.seconds(text, "ms");
          break;
        case "response_time_us":
          out[RESPONSE_TIME_TEXT] = Values.seconds(text, "us");
          break;
        case "user_id":
          out[USER_ID] = Values.unescape(text);
          break;
        case "http_method":
          out[HTTP_METHOD] = text;
          break;
        case "path":
          out[PATH] = Values.unescape(text);
          break;
        case "protocol":
          out[PROTOCOL] = text;
          break;
        case "referrer":
          out[REFERRER] = Values.unescape(text);
          break;
        case "user_agent":
          out[USER_AGENT] = Values.unescape(text);
          break;
        case "vhost":
          out[VHOST] = text;
          break;
        case "request_id":
          out[REQUEST_ID] = text;
          break;
        default:
          if (text != null && target.startsWith("extra:")) {
            if (extra == null) {
              extra = new LinkedHashMap<>();
            }
            extra.put(target.substring(6), Values.unescape(text));
          }
      }
    }
    out[EXTRA] = extra;
    out[IS_ACCESS] = true;
    out[SOURCE_FORMAT] = format.name;
  }
}
