package dev.logstream.spark;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.apache.spark.sql.catalyst.json.JSONOptions;
import org.apache.spark.unsafe.types.UTF8String;

/**
 * Text-level building blocks shared by the record tokenizers: payload decoding and trimming, and
 * one pass over a JSON object that reads it exactly as Spark's {@code from_json(payload,
 * 'map<string,string>', {allowSingleQuotes: false})} would (same Jackson factory, same rendering
 * of non-string values), without building the map.
 */
final class Records {
  private Records() {}

  /** ASCII whitespace, as logstream.parsing._WHITESPACE: space, tab, LF, VT, FF, CR. */
  static boolean isWhitespace(int c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
  }

  /** {@code text} without leading and trailing ASCII whitespace (null stays null). */
  static String strip(String text) {
    if (text == null) {
      return null;
    }
    int start = 0;
    int end = text.length();
    while (start < end && isWhitespace(text.charAt(start))) {
      start++;
    }
    while (end > start && isWhitespace(text.charAt(end - 1))) {
      end--;
    }
    return start == 0 && end == text.length() ? text : text.substring(start, end);
  }

  /** UTF-8 bytes as text, invalid sequences replaced by U+FFFD as Spark's make_valid_utf8. */
  static String decode(byte[] bytes) {
    return UTF8String.fromBytes(bytes).makeValid().toString();
  }

  /**
   * A payload as valid UTF-8 (invalid sequences replaced by U+FFFD as Spark's make_valid_utf8)
   * and the bounds of its text without leading and trailing ASCII whitespace. JSON is read from
   * these bytes directly, without decoding the payload into a Java string first.
   */
  static final class Payload {
    final byte[] bytes;
    final int start;
    final int end;

    /** The payload of a Kafka value, or null when it is null, empty or over the size limit
     * (logstream.parsing rejects those from the Kafka value itself). */
    static Payload of(byte[] value, int maxRecordBytes) {
      return value == null || value.length == 0 || value.length > maxRecordBytes
          ? null
          : new Payload(value);
    }

    private Payload(byte[] value) {
      this(UTF8String.fromBytes(value).makeValid().getBytes(), 0, -1);
    }

    /** The part {@code [from, to)} of valid UTF-8 {@code bytes} ({@code to} -1: the end),
     * trimmed of ASCII whitespace: the record inside an envelope. */
    Payload(byte[] bytes, int from, int to) {
      this.bytes = bytes;
      if (to < 0) {
        to = bytes.length;
      }
      while (from < to && isWhitespace(bytes[from])) {
        from++;
      }
      while (to > from && isWhitespace(bytes[to - 1])) {
        to--;
      }
      start = from;
      end = to;
    }

    boolean isEmpty() {
      return start == end;
    }

    /** Starts like JSON: with {@code {} or {@code [}. */
    boolean looksJson() {
      return !isEmpty() && (bytes[start] == '{' || bytes[start] == '[');
    }

    /** A JSON object must end with {@code }}. */
    boolean endsWithBrace() {
      return !isEmpty() && bytes[end - 1] == '}';
    }

    boolean contains(byte b) {
      for (int i = start; i < end; i++) {
        if (bytes[i] == b) {
          return true;
        }
      }
      return false;
    }

    String text() {
      return new String(bytes, start, end - start, StandardCharsets.UTF_8);
    }
  }

  /** Receives the fields of a JSON object in document order; value null for JSON null. */
  interface FieldSink {
    void field(String name, String value);

    /** As {@link #field(String, String)}, told whether the value is an object or array. */
    default void field(String name, String value, boolean container) {
      field(name, value);
    }
  }

  /** Reads JSON objects field by field; one instance per thread (it reuses a buffer). */
  static final class JsonObjectReader {
    private final JsonFactory factory;
    private final ByteArrayOutputStream rendered = new ByteArrayOutputStream(128);

    JsonObjectReader() {
      scala.collection.immutable.Map<String, String> options =
          scala.collection.immutable.Map$.MODULE$.<String, String>empty()
              .updated("allowSingleQuotes", "false");
      // the time zone only matters for inferring timestamps, which a map of strings never does;
      // Spark reads the bytes through a UTF-8 Reader, while Jackson's byte parser would detect
      // UTF-16/32 from the zero bytes and read such a payload as JSON
      this.factory =
          new JSONOptions(options, "UTC", "")
              .buildJsonFactory()
              .rebuild()
              .disable(JsonFactory.Feature.CHARSET_DETECTION)
              .build();
    }

    /** {@link #readObject}: the payload was one JSON object. */
    static final int OBJECT = 0;
    /** {@link #readObject}: the payload is not a JSON object. */
    static final int NOT_OBJECT = 1;
    /** {@link #readObject}: a JSON object followed by more content (a second object, say). */
    static final int TRAILING = 2;

    /** True when the payload is exactly one JSON object, its fields fed to {@code sink}. */
    boolean read(Payload payload, FieldSink sink) {
      return readObject(payload, sink) == OBJECT;
    }

    /**
     * Feeds the fields of the object in {@code payload} to {@code sink} (some fields, possibly,
     * when it turns out not to be one) and says whether it was exactly one JSON object:
     * {@link #OBJECT}, {@link #NOT_OBJECT} or {@link #TRAILING}.
     */
    int readObject(Payload payload, FieldSink sink) {
      int length = payload.end - payload.start;
      try (JsonParser parser = factory.createParser(payload.bytes, payload.start, length)) {
        if (parser.nextToken() != JsonToken.START_OBJECT) {
          return NOT_OBJECT;
        }
        while (true) {
          JsonToken token = parser.nextToken();
          if (token == JsonToken.END_OBJECT) {
            break;
          }
          if (token != JsonToken.FIELD_NAME) {
            return NOT_OBJECT;
          }
          String name = parser.currentName();
          JsonToken valueToken = parser.nextToken();
          boolean container =
              valueToken == JsonToken.START_OBJECT || valueToken == JsonToken.START_ARRAY;
          sink.field(name, value(parser, valueToken), container);
        }
        try {
          return parser.nextToken() == null ? OBJECT : TRAILING;
        } catch (IOException e) {
          return TRAILING;
        }
      } catch (IOException | RuntimeException e) {
        return NOT_OBJECT;
      }
    }

    /** A value as Spark's JSON reader renders it into a string column. */
    private String value(JsonParser parser, JsonToken token) throws IOException {
      if (token == null) {
        throw new IOException("unexpected end of input");
      }
      switch (token) {
        case VALUE_NULL:
          return null;
        case VALUE_STRING:
          return parser.getText();
        case VALUE_NUMBER_INT:
          String digits = parser.getText();
          if (!digits.equals("-0")) {
            return digits; // what the generator would write back
          }
          // fall through: re-rendered as "0"
        default:
          // numbers, booleans, objects and arrays: re-rendered by a generator, as Spark does
          rendered.reset();
          try (JsonGenerator generator = factory.createGenerator(rendered)) {
            generator.copyCurrentStructure(parser);
          }
          return new String(rendered.toByteArray(), StandardCharsets.UTF_8);
      }
    }
  }

  /**
   * Where a tokenizer puts a JSON object's fields in its output row: known keys in their slots
   * (the first value of a key given twice; trimmed where the slot is typed later), the non-null
   * values of unknown keys in a map at {@code extraSlot} (the last value of a key given twice).
   */
  static final class JsonFields {
    private final Map<String, Integer> slots;
    private final boolean[] trimmed;
    private final int extraSlot;

    JsonFields(Map<String, Integer> slots, Set<Integer> trimmedSlots, int extraSlot, int width) {
      this.slots = slots;
      this.trimmed = new boolean[width];
      trimmedSlots.forEach(slot -> trimmed[slot] = true);
      this.extraSlot = extraSlot;
    }

    /** Fills {@code out} from the object in {@code payload}; false if it is not a JSON object. */
    boolean read(JsonObjectReader json, Payload payload, Object[] out) {
      boolean[] seen = new boolean[out.length];
      return json.read(
          payload,
          (name, text) -> {
            Integer slot = slots.get(name);
            if (slot == null) {
              if (text != null) {
                @SuppressWarnings("unchecked")
                Map<String, String> extra = (Map<String, String>) out[extraSlot];
                if (extra == null) {
                  extra = new LinkedHashMap<>();
                  out[extraSlot] = extra;
                }
                extra.put(name, text);
              }
            } else if (!seen[slot]) {
              seen[slot] = true;
              out[slot] = trimmed[slot] ? strip(text) : text;
            }
          });
    }
  }
}
