package dev.logstream.spark;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

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

  /** Each top-level key's first value (null for JSON null). */
  final Map<String, String> first = new HashMap<>();
  /** Each top-level key's last non-null value, in document order of first appearance. */
  final Map<String, String> last = new LinkedHashMap<>();
  /** Top-level keys whose (first) value is an object or array. */
  private final Set<String> containers = new HashSet<>();
  private final Map<String, JsonNode> parsed = new HashMap<>();

  @Override
  public void field(String name, String value) {
    field(name, value, false);
  }

  @Override
  public void field(String name, String value, boolean container) {
    if (!first.containsKey(name)) {
      first.put(name, value);
      if (container) {
        containers.add(name);
      }
    }
    if (value != null) {
      last.put(name, value);
    }
  }

  /**
   * The value at {@code path} as text, or null when absent or null: a top-level key's value as
   * rendered (an object or array as its JSON text), a nested one only when it is a scalar.
   */
  String get(String path) {
    if (first.containsKey(path)) {
      return first.get(path);
    }
    int dot = path.indexOf('.');
    while (dot > 0) {
      String head = path.substring(0, dot);
      if (containers.contains(head)) {
        JsonNode node = find(container(head), path.substring(dot + 1));
        if (node != null) {
          return scalar(node);
        }
      }
      dot = path.indexOf('.', dot + 1);
    }
    return null;
  }

  /** True when {@code path} holds a value other than null. */
  boolean has(String path) {
    if (first.containsKey(path)) {
      return first.get(path) != null;
    }
    int dot = path.indexOf('.');
    while (dot > 0) {
      String head = path.substring(0, dot);
      if (containers.contains(head)) {
        JsonNode node = find(container(head), path.substring(dot + 1));
        if (node != null && !node.isNull()) {
          return true;
        }
      }
      dot = path.indexOf('.', dot + 1);
    }
    return false;
  }

  private JsonNode container(String key) {
    return parsed.computeIfAbsent(key, name -> {
      try {
        return MAPPER.readTree(first.get(name));
      } catch (java.io.IOException | RuntimeException e) {
        return null;
      }
    });
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

  /** The record's keys not in {@code used}, their last non-null values, in document order. */
  Map<String, String> rest(Set<String> used) {
    Map<String, String> extra = null;
    Iterator<Map.Entry<String, String>> entries = last.entrySet().iterator();
    while (entries.hasNext()) {
      Map.Entry<String, String> entry = entries.next();
      if (!used.contains(entry.getKey())) {
        if (extra == null) {
          extra = new LinkedHashMap<>();
        }
        extra.put(entry.getKey(), entry.getValue());
      }
    }
    return extra;
  }
}
