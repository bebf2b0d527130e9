package dev.logstream.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * What {@link LogTokens} needs to read log records: the compiled access-log formats and JSON
 * field mappings, which of them to try for a record (by Kafka key, by topic, or the default
 * list), the service fallbacks and the trusted proxies. Built by logstream.formats.parse_spec
 * and handed over as one JSON document; see that module for the meaning of each part.
 */
final class ParseSpec {
  final int maxRecordBytes;
  final String defaultService;
  final Map<String, String> serviceByTopic = new HashMap<>();
  final Candidates defaults;
  final Map<String, Candidates> byTopic = new HashMap<>();
  final Map<String, Candidates> byKey = new HashMap<>();
  final Clients clients;

  /** The formats tried for a record, in order: access-log formats and JSON mappings apart. */
  static final class Candidates {
    final List<AccessFormat> access = new ArrayList<>();
    final List<JsonFormat> json = new ArrayList<>();
    /** The JSON mapping of a record none detects: logstream's own if listed, else the first. */
    final JsonFormat fallbackJson;
    final String accessNames;

    Candidates(List<String> names, Map<String, AccessFormat> access, Map<String, JsonFormat> json) {
      for (String name : names) {
        if (access.containsKey(name)) {
          this.access.add(access.get(name));
        } else if (json.containsKey(name)) {
          this.json.add(json.get(name));
        } else {
          throw new IllegalArgumentException("unknown format " + name);
        }
      }
      JsonFormat fallback = this.json.isEmpty() ? null : this.json.get(0);
      for (JsonFormat format : this.json) {
        if (format.name.equals("logstream")) {
          fallback = format;
        }
      }
      this.fallbackJson = fallback;
      List<String> accessList = new ArrayList<>();
      this.access.forEach(format -> accessList.add(format.name));
      this.accessNames = String.join(", ", accessList);
    }
  }

  /** One compiled access-log format: a pattern and what each capture group becomes. */
  static final class AccessFormat {
    final String name;
    final Pattern pattern;
    final String[] targets;

    AccessFormat(JsonNode node) {
      name = node.get("name").asText();
      pattern = Pattern.compile(node.get("pattern").asText());
      targets = strings(node.get("targets")).toArray(new String[0]);
    }
  }

  /**
   * A JSON path compiled against the spec's index of interesting top-level keys: the key that is
   * the whole path (a literal dotted key counts), and for a dotted path each top-level prefix with
   * the rest of the path to look up inside it.
   */
  static final class Path {
    final int literal;
    final int[] prefixes;
    final String[] rests;

    Path(ParseSpec spec, String path) {
      literal = spec.intern(path);
      List<Integer> heads = new ArrayList<>();
      List<String> tails = new ArrayList<>();
      for (int dot = path.indexOf('.'); dot > 0; dot = path.indexOf('.', dot + 1)) {
        heads.add(spec.intern(path.substring(0, dot)));
        tails.add(path.substring(dot + 1));
      }
      prefixes = heads.stream().mapToInt(Integer::intValue).toArray();
      rests = tails.toArray(new String[0]);
    }
  }

  /** One JSON field mapping: the paths of each column, the paths that detect it, its units. */
  static final class JsonFormat {
    final String name;
    final Path[] detect;
    final String timestampUnit;
    final String responseTimeUnit;
    final String levelScale;
    final String defaultLevel;
    /** The paths of each of LogTokens.TEXT_COLUMNS, in that order, and of the other columns. */
    final Path[][] textPaths;
    final Path[] levelPaths;
    final Path[] statusPaths;
    final Path[] bytesPaths;
    final Path[] responseTimePaths;
    final Path[] requestPaths;
    /** Each timestamp path: one path, or two whose values add up (seconds + nanoseconds). */
    final Path[][] timestampPaths;

    JsonFormat(ParseSpec spec, JsonNode node) {
      name = node.get("name").asText();
      Map<String, List<String>> fields = new HashMap<>();
      Iterator<Map.Entry<String, JsonNode>> entries = node.get("fields").fields();
      while (entries.hasNext()) {
        Map.Entry<String, JsonNode> entry = entries.next();
        fields.put(entry.getKey(), strings(entry.getValue()));
      }
      detect = paths(spec, strings(node.get("detect")));
      timestampUnit = node.get("timestamp_unit").asText();
      responseTimeUnit = node.get("response_time_unit").asText();
      levelScale = node.get("level_scale").asText();
      JsonNode level = node.get("default_level");
      defaultLevel = level == null || level.isNull() ? null : level.asText();
      textPaths = new Path[LogTokens.TEXT_COLUMNS.length][];
      for (int i = 0; i < textPaths.length; i++) {
        textPaths[i] = paths(spec, fields.get(LogTokens.TEXT_COLUMNS[i]));
      }
      levelPaths = paths(spec, fields.get("level"));
      statusPaths = paths(spec, fields.get("status_code"));
      bytesPaths = paths(spec, fields.get("bytes_sent"));
      responseTimePaths = paths(spec, fields.get("response_time"));
      requestPaths = paths(spec, fields.get("request"));
      List<String> times = fields.getOrDefault("timestamp", List.of());
      timestampPaths = new Path[times.size()][];
      for (int i = 0; i < times.size(); i++) {
        timestampPaths[i] = paths(spec, List.of(times.get(i).split("\\+")));
      }
    }

    private static Path[] paths(ParseSpec spec, List<String> texts) {
      if (texts == null) {
        return NO_PATHS;
      }
      Path[] out = new Path[texts.size()];
      for (int i = 0; i < out.length; i++) {
        out[i] = new Path(spec, texts.get(i));
      }
      return out;
    }
  }

  private static final Path[] NO_PATHS = new Path[0];

  /** The top-level JSON keys some path of some JSON format looks at, by index. */
  final Map<String, Integer> interest = new HashMap<>();
  final List<String> interestNames = new ArrayList<>();

  private int intern(String name) {
    Integer known = interest.get(name);
    if (known != null) {
      return known;
    }
    interest.put(name, interestNames.size());
    interestNames.add(name);
    return interestNames.size() - 1;
  }

  ParseSpec(byte[] document) {
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(document);
    } catch (IOException e) {
      throw new UncheckedIOException("logstream parse spec is not JSON", e);
    }
    maxRecordBytes = root.get("max_record_bytes").asInt();
    defaultService = root.get("default_service").asText();
    root.get("service_by_topic").fields()
        .forEachRemaining(e -> serviceByTopic.put(e.getKey(), e.getValue().asText()));
    Map<String, AccessFormat> access = new HashMap<>();
    for (JsonNode node : root.get("access")) {
      AccessFormat format = new AccessFormat(node);
      access.put(format.name, format);
    }
    Map<String, JsonFormat> json = new HashMap<>();
    for (JsonNode node : root.get("json")) {
      JsonFormat format = new JsonFormat(this, node);
      json.put(format.name, format);
    }
    defaults = new Candidates(strings(root.get("candidates")), access, json);
    root.get("by_topic").fields().forEachRemaining(
        e -> byTopic.put(e.getKey(), new Candidates(strings(e.getValue()), access, json)));
    root.get("by_key").fields().forEachRemaining(
        e -> byKey.put(e.getKey(), new Candidates(strings(e.getValue()), access, json)));
    clients = new Clients(strings(root.get("trusted_proxies")));
  }

  /** The formats to try for a record with this Kafka key (may be null) and topic. */
  Candidates candidates(String key, String topic) {
    Candidates found = key == null || byKey.isEmpty() ? null : byKey.get(key);
    if (found == null && topic != null && !byTopic.isEmpty()) {
      found = byTopic.get(topic);
    }
    return found == null ? defaults : found;
  }

  /** The service of a record whose own fields name none: the key, or the topic's default. */
  String fallbackService(String key, String topic) {
    if (key != null && !key.isEmpty()) {
      return key;
    }
    String byTopicDefault = topic == null ? null : serviceByTopic.get(topic);
    return byTopicDefault == null ? defaultService : byTopicDefault;
  }

  private static List<String> strings(JsonNode array) {
    List<String> out = new ArrayList<>();
    if (array != null) {
      for (JsonNode item : array) {
        out.add(item.asText());
      }
    }
    return out;
  }
}
