package dev.logstream.spark;

import java.math.BigDecimal;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Field values normalised on the way out of the tokenizer: levels, units, request lines. */
final class Values {
  private Values() {}

  private static final Map<String, String> LEVELS = new HashMap<>();

  static {
    String[][] names = {
      {"TRACE", "trace", "verbose", "vrb", "trc", "finest", "finer"},
      {"DEBUG", "debug", "dbg", "fine", "config"},
      {"INFO", "info", "information", "informational", "inf", "notice"},
      {"WARN", "warn", "warning", "wrn"},
      {"ERROR", "error", "err", "eror", "severe"},
      {"FATAL", "fatal", "critical", "crit", "ftl", "panic", "dpanic", "emerg", "emergency",
          "alert"},
    };
    for (String[] level : names) {
      LEVELS.put(level[0], level[0]); // the canonical name: found without lower-casing
      for (int i = 1; i < level.length; i++) {
        LEVELS.put(level[i], level[0]);
      }
    }
  }

  /**
   * A level as TRACE, DEBUG, INFO, WARN, ERROR or FATAL: names in any case and their common
   * abbreviations; numbers on pino/bunyan's scale (10 trace .. 60 fatal) or, with {@code otel},
   * OpenTelemetry severity numbers (1-4 trace .. 21-24 fatal). Anything else is kept as given.
   */
  static String level(String text, String scale) {
    if (text == null) {
      return null;
    }
    String trimmed = Records.strip(text);
    String known = LEVELS.get(trimmed);
    if (known == null) {
      known = LEVELS.get(trimmed.toLowerCase(Locale.ROOT));
    }
    if (known != null) {
      return known;
    }
    if (!trimmed.isEmpty() && trimmed.chars().allMatch(c -> c >= '0' && c <= '9')
        && trimmed.length() < 4) {
      int number = Integer.parseInt(trimmed);
      if ("otel".equals(scale)) {
        String[] byFour = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};
        return number >= 1 && number <= 24 ? byFour[(number - 1) / 4] : text;
      }
      if (number >= 60) {
        return "FATAL";
      }
      String[] byTen = {"TRACE", "TRACE", "DEBUG", "INFO", "WARN", "ERROR"};
      return byTen[number / 10];
    }
    return text;
  }

  private static final Map<String, Integer> SHIFT = Map.of("s", 0, "ms", 3, "us", 6, "ns", 9);

  /**
   * A number in plain decimal text, or null when writing it out would take more than a few dozen
   * digits ({@code 1e999999999} is a valid number whose plain text has a billion digits).
   */
  static String plain(BigDecimal number) {
    int scale = number.scale();
    int digits = number.precision() - scale;
    return scale > 60 || scale < -60 || digits > 60 ? null : number.toPlainString();
  }

  /** A number of {@code unit}s as seconds, in plain decimal text; other text unchanged. */
  static String seconds(String text, String unit) {
    if (text == null || "s".equals(unit)) {
      return text;
    }
    BigDecimal number = number(text);
    return number == null ? text : plain(number.scaleByPowerOfTen(-SHIFT.get(unit)));
  }

  /** Seconds plus nanoseconds (log4j2's instant) as decimal seconds, or null. */
  static String secondsPlusNanos(String seconds, String nanos) {
    if (seconds == null) {
      return null;
    }
    BigDecimal whole = number(seconds);
    BigDecimal fraction = nanos == null ? BigDecimal.ZERO : number(nanos);
    if (whole == null || fraction == null) {
      return seconds; // validation names the text
    }
    return plain(whole.add(fraction.scaleByPowerOfTen(-9)));
  }

  /**
   * {@code text} as a number of reasonable size (at most 40 digits before and after the point),
   * else null: {@code 1e999999999} is a valid number, but writing it out or shifting it would
   * take a billion digits, and {@code 1e-2147483647} overflows the scale.
   */
  static BigDecimal number(String text) {
    try {
      BigDecimal number = new BigDecimal(Records.strip(text));
      int scale = number.scale();
      return scale > 40 || scale < -40 || number.precision() - scale > 40 ? null : number;
    } catch (NumberFormatException | ArithmeticException e) {
      return null;
    }
  }

  private static final BigDecimal MILLIS_FROM = new BigDecimal("1e11");
  private static final BigDecimal MICROS_FROM = new BigDecimal("1e14");
  private static final BigDecimal NANOS_FROM = new BigDecimal("1e17");
  private static final long MICROS_LIMIT = 100_000_000_000L * 1_000_000L; // 1e11 s

  /**
   * An epoch timestamp written as a number, in microseconds, or null when {@code text} is not a
   * number (ISO-8601 text, say) or not a plausible time. The unit follows from the magnitude:
   * below 1e11 seconds, below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds; the
   * value is cut (floored) to the microsecond, as ISO-8601 fractions are. Numbers are what JSON
   * (and logstream.parsing._NUMBER) writes: {@code [+-]?(d+.?d*|.d+)([eE][+-]?d+)?}.
   */
  static Long epochMicros(String text) {
    if (text == null || !isNumber(text)) {
      return null;
    }
    BigDecimal value = number(text);
    if (value == null) {
      return null;
    }
    BigDecimal magnitude = value.abs();
    BigDecimal micros;
    if (magnitude.compareTo(MILLIS_FROM) < 0) {
      micros = value.scaleByPowerOfTen(6);
    } else if (magnitude.compareTo(MICROS_FROM) < 0) {
      micros = value.scaleByPowerOfTen(3);
    } else if (magnitude.compareTo(NANOS_FROM) < 0) {
      micros = value;
    } else {
      micros = value.scaleByPowerOfTen(-3);
    }
    micros = micros.setScale(0, java.math.RoundingMode.FLOOR);
    if (micros.abs().compareTo(BigDecimal.valueOf(MICROS_LIMIT)) >= 0) {
      return null;
    }
    return micros.longValueExact();
  }

  /** {@code [+-]?(d+.?d*|.d+)([eE][+-]?d+)?}, checked without a regular expression. */
  static boolean isNumber(String text) {
    int i = 0;
    int n = text.length();
    if (i < n && (text.charAt(i) == '+' || text.charAt(i) == '-')) {
      i++;
    }
    int digits = 0;
    while (i < n && text.charAt(i) >= '0' && text.charAt(i) <= '9') {
      i++;
      digits++;
    }
    if (i < n && text.charAt(i) == '.') {
      i++;
      while (i < n && text.charAt(i) >= '0' && text.charAt(i) <= '9') {
        i++;
        digits++;
      }
    }
    if (digits == 0) {
      return false;
    }
    if (i < n && (text.charAt(i) == 'e' || text.charAt(i) == 'E')) {
      i++;
      if (i < n && (text.charAt(i) == '+' || text.charAt(i) == '-')) {
        i++;
      }
      int exponent = 0;
      while (i < n && text.charAt(i) >= '0' && text.charAt(i) <= '9') {
        i++;
        exponent++;
      }
      if (exponent == 0) {
        return false;
      }
    }
    return i == n;
  }

  private static final Pattern COMMA_FRACTION =
      Pattern.compile("^(\\d{4}-\\d{2}-\\d{2}[T ]\\d{2}:\\d{2}:\\d{2}),(\\d+.*)$");

  /** ISO-8601 text with a decimal comma ({@code 12:00:00,123}, log4j and Python) made a dot. */
  static String isoTime(String text) {
    if (text == null || text.indexOf(',') < 0) {
      return text;
    }
    Matcher comma = COMMA_FRACTION.matcher(text);
    return comma.matches() ? comma.group(1) + "." + comma.group(2) : text;
  }

  private static final Pattern REQUEST =
      Pattern.compile("([A-Z]+) ([^\"\\\\ ]*+(?:\\\\.[^\"\\\\ ]*+)*+)(?: (HTTP/[0-9.]+))?");
  private static final Pattern UNESCAPE = Pattern.compile("\\\\([\"\\\\])");

  /** Method, path and protocol of a request line of that shape (else null); path unescaped. */
  static String[] request(String line) {
    if (line == null) {
      return null;
    }
    Matcher match = REQUEST.matcher(line);
    if (!match.matches()) {
      return null;
    }
    return new String[] {match.group(1), unescape(dashNull(match.group(2))), match.group(3)};
  }

  /** Null for the access-log placeholder {@code -} and for empty text. */
  static String dashNull(String text) {
    return text == null || text.isEmpty() || text.equals("-") ? null : text;
  }

  /** Undoes the {@code \"} and {@code \\} escapes of a quoted access-log field. */
  static String unescape(String text) {
    if (text == null || text.indexOf('\\') < 0) {
      return text;
    }
    return UNESCAPE.matcher(text).replaceAll("$1");
  }
}
