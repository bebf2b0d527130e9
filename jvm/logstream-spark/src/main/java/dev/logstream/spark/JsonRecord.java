package dev.logstream.spark;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One JSON log record's fields, read once, looked up by path. Top-level values are read as
 * Spark's {@code from_json} into a string map renders them (see {@link Records.JsonObjectReader});
 * a dotted path that is not a top-level key is looked up inside the objects it starts with, parsed
 * on first use only. Within a path, a literal dotted key matches too ({@code "log.level"}), and an
 * OpenTelemetry attribute list ({@code [{"key": k, "value": {"stringValue": v}}]}) reads as an
 * object keyed by {@code k}.
 */
final class JsonRecord implements Records.FieldSink {
  private static final ObjectMapper MAPPER =
      new ObjectMapper().enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS);

  private final Map<String, Integer> interest;
  private final List<String> names;
  // per interesting key: its first value (null for JSON null), its last non-null value
  private final String[] first;
  private final String[] last;
  private final boolean[] seen;
  private final boolean[] container;
  private final boolean[] used;
  private final int[] touched;
  private int touchedCount;
  /** The other keys' last non-null values, in document order; a new map per record. */
  private Map<String, String> others;
  private JsonNode[] parsed;

  /** A reader for the keys of {@code spec}'s JSON formats; reused record after record. */
  JsonRecord(ParseSpec spec) {
    interest = spec.interest;
    names = spec.interestNames;
    int size = names.size();
    first = new String[size];
    last = new String[size];
    seen = new boolean[size];
    container = new boolean[size];
    used = new boolean[size];
    touched = new int[size];
  }

  /** Forgets the previous record. */
  void reset() {
    for (int i = 0; i < touchedCount; i++) {
      int id = touched[i];
      first[id] = last[id] = null;
      seen[id] = container[id] = used[id] = false;
      if (parsed != null) {
        parsed[id] = null;
      }
    }
    touchedCount = 0;
    others = null;
  }

  @Override
  public void field(String name, String value) {
    field(name, value, false);
  }

  @Override
  public void field(String name, String value, boolean isContainer) {
    Integer known = interest.get(name);
    if (known == null) {
      if (value != null) {
        if (others == null) {
          others = new LinkedHashMap<>();
        }
        others.put(name, value);
      }
      return;
    }
    int id = known;
    if (!seen[id]) {
      seen[id] = true;
      first[id] = value;
      container[id] = isContainer;
      touched[touchedCount++] = id;
    }
    if (value != null) {
      last[id] = value;
    }
  }

  /**
   * The value at {@code path} as text, or null when absent or null: a top-level key's value as
   * rendered (an object or array as its JSON text), a nested one only when it is a scalar. A
   * top-level key read this way is used: it does not go to {@code extra}.
   */
  String take(ParseSpec.Path path) {
    if (seen[path.literal]) {
      used[path.literal] = true;
      return first[path.literal];
    }
    JsonNode node = nested(path);
    return node == null ? null : scalar(node);
  }

  /** True when {@code path} holds a value other than null. */
  boolean has(ParseSpec.Path path) {
    if (seen[path.literal]) {
      return first[path.literal] != null;
    }
    JsonNode node = nested(path);
    return node != null && !node.isNull();
  }

  private JsonNode nested(ParseSpec.Path path) {
    for (int i = 0; i < path.prefixes.length; i++) {
      int head = path.prefixes[i];
      if (seen[head] && container[head]) {
        JsonNode node = find(container(head), path.rests[i]);
        if (node != null) {
          return node;
        }
      }
    }
    return null;
  }

  private JsonNode container(int id) {
    if (parsed == null) {
      parsed = new JsonNode[first.length];
    }
    if (parsed[id] == null) {
      try {
        parsed[id] = MAPPER.readTree(first[id]);
      } catch (java.io.IOException | RuntimeException e) {
        parsed[id] = MAPPER.nullNode();
      }
    }
    return parsed[id];
  }

  /** The node at dotted {@code path} below {@code node}, trying literal dotted keys too. */
  private static JsonNode find(JsonNode node, String path) {
    if (node == null) {
      return null;
    }
    if (node.isArray()) {
      node = attributes(node);
      if (node == null) {
        return null;
      }
    }
    if (!node.isObject()) {
      return null;
    }
    JsonNode whole = node.get(path);
    if (whole != null) {
      return whole;
    }
    int dot = path.indexOf('.');
    while (dot > 0) {
      JsonNode child = node.get(path.substring(0, dot));
      if (child != null) {
        JsonNode found = find(child, path.substring(dot + 1));
        if (found != null) {
          return found;
        }
      }
      dot = path.indexOf('.', dot + 1);
    }
    return null;
  }

  /** An OpenTelemetry attribute list as an object (values unwrapped), or null if not one. */
  private static JsonNode attributes(JsonNode array) {
    com.fasterxml.jackson.databind.node.ObjectNode object = MAPPER.createObjectNode();
    for (JsonNode item : array) {
      JsonNode key = item.get("key");
      JsonNode value = item.get("value");
      if (key == null || !key.isTextual() || value == null) {
        return null;
      }
      object.set(key.asText(), unwrap(value));
    }
    return object;
  }

  private static JsonNode unwrap(JsonNode value) {
    if (value.isObject() && value.size() == 1) {
      Map.Entry<String, JsonNode> only = value.fields().next();
      if (only.getKey().endsWith("Value") && !only.getKey().equals("kvlistValue")) {
        return only.getValue();
      }
    }
    return value;
  }

  /** A nested value as text: strings verbatim, numbers in plain notation, a one-value list as its
   * value, else null. */
  private static String scalar(JsonNode node) {
    node = unwrap(node);
    if (node.isArray() && node.size() == 1) {
      node = node.get(0); // a header list with one value (Caddy's request.headers)
    }
    if (node.isTextual()) {
      return node.asText();
    }
    if (node.isBigDecimal()) {
      String plain = Values.plain(node.decimalValue());
      return plain == null ? node.decimalValue().toString() : plain;
    }
    if (node.isNumber() || node.isBoolean()) {
      return node.asText();
    }
    return null;
  }

  /** The keys no column took, their last non-null values (the other keys first). */
  Map<String, String> rest() {
    Map<String, String> extra = others;
    for (int i = 0; i < touchedCount; i++) {
      int id = touched[i];
      if (!used[id] && last[id] != null) {
        if (extra == null) {
          extra = new LinkedHashMap<>();
        }
        extra.put(names.get(id), last[id]);
      }
    }
    return extra;
  }
}
