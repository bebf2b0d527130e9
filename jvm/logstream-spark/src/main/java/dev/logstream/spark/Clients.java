package dev.logstream.spark;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;

/**
 * The client of a request seen through proxies. The addresses of a record's X-Forwarded-For list
 * followed by the address that connected (which may itself be a list) form a chain, oldest first.
 * With no trusted proxies configured the client is the chain's first address; otherwise it is the
 * last address, walking from the right, that is not a trusted proxy (as nginx's realip module
 * with {@code real_ip_recursive on}), or the first when every address is trusted. Addresses that
 * are not IP literals (hostnames, {@code unix:}) are never trusted, and never looked up; an
 * X-Forwarded-For value that is not a list of IP addresses is kept but not used.
 */
final class Clients {
  private final List<byte[][]> trusted = new ArrayList<>(); // {network, mask}

  Clients(List<String> cidrs) {
    for (String cidr : cidrs) {
      int slash = cidr.indexOf('/');
      byte[] network = literal(slash < 0 ? cidr : cidr.substring(0, slash));
      if (network == null) {
        throw new IllegalArgumentException("trusted proxy " + cidr + " is not an IP or CIDR");
      }
      int bits;
      try {
        bits = slash < 0 ? network.length * 8 : Integer.parseInt(cidr.substring(slash + 1));
      } catch (NumberFormatException e) {
        bits = -1;
      }
      if (bits < 0 || bits > network.length * 8) {
        throw new IllegalArgumentException("trusted proxy " + cidr + " is not address/length");
      }
      byte[] mask = new byte[network.length];
      for (int i = 0; i < mask.length; i++) {
        int left = Math.max(0, Math.min(8, bits - 8 * i));
        mask[i] = (byte) (0xff00 >> left);
      }
      trusted.add(new byte[][] {network, mask});
    }
  }

  /** The client address of {@code connected} (a client field) and {@code forwardedFor}. */
  String client(String connected, String forwardedFor) {
    if (forwardedFor == null && (connected == null || connected.indexOf(',') < 0)) {
      return connected;
    }
    List<String> chain = new ArrayList<>();
    split(forwardedFor, chain, true);
    split(connected, chain, false);
    if (chain.isEmpty()) {
      return connected;
    }
    if (!trusted.isEmpty()) {
      for (int i = chain.size() - 1; i >= 0; i--) {
        if (!isTrusted(chain.get(i))) {
          return chain.get(i);
        }
      }
    }
    return chain.get(0);
  }

  /** Adds the addresses of a list; a forwarded list that holds anything else is ignored whole
   * (a header is whatever the client sent). */
  private static void split(String list, List<String> into, boolean forwarded) {
    if (list == null) {
      return;
    }
    List<String> found = new ArrayList<>();
    for (String item : list.split(",")) {
      String address = item.trim();
      if (address.isEmpty() || address.equals("-") || address.equalsIgnoreCase("unknown")) {
        continue;
      }
      if (forwarded && literal(address) == null) {
        return;
      }
      found.add(address);
    }
    into.addAll(found);
  }

  private boolean isTrusted(String address) {
    byte[] ip = literal(address);
    if (ip == null) {
      return false;
    }
    for (byte[][] network : trusted) {
      if (network[0].length != ip.length) {
        continue;
      }
      boolean inside = true;
      for (int i = 0; i < ip.length && inside; i++) {
        inside = (ip[i] & network[1][i]) == (network[0][i] & network[1][i]);
      }
      if (inside) {
        return true;
      }
    }
    return false;
  }

  /**
   * The bytes of an IPv4 literal (dotted quad, an optional {@code :port}) or an IPv6 literal
   * (brackets and a port allowed), else null. Nothing is ever looked up: IPv4 is parsed here, and
   * the JDK reads text with a colon as an IPv6 literal or refuses it.
   */
  static byte[] literal(String text) {
    String address = text;
    if (address.startsWith("[")) {
      int close = address.indexOf(']');
      if (close < 0) {
        return null;
      }
      address = address.substring(1, close);
    } else if (address.indexOf(':') > 0 && address.indexOf(':') == address.lastIndexOf(':')) {
      address = address.substring(0, address.indexOf(':')); // a.b.c.d:port
    }
    if (address.indexOf(':') < 0) {
      return ipv4(address);
    }
    for (int i = 0; i < address.length(); i++) {
      char c = address.charAt(i);
      boolean hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      if (!hex && c != ':' && c != '.') {
        return null; // zone ids and anything else
      }
    }
    try {
      byte[] bytes = InetAddress.getByName(address).getAddress();
      return bytes.length == 16 ? bytes : null; // an IPv4-mapped address stays apart
    } catch (UnknownHostException | RuntimeException e) {
      return null;
    }
  }

  /** Four decimal octets 0..255 separated by dots, else null. */
  private static byte[] ipv4(String text) {
    byte[] bytes = new byte[4];
    int part = 0;
    int value = -1;
    for (int i = 0; i <= text.length(); i++) {
      char c = i < text.length() ? text.charAt(i) : '.';
      if (c >= '0' && c <= '9') {
        value = (value < 0 ? 0 : value * 10) + (c - '0');
        if (value > 255) {
          return null;
        }
      } else if (c == '.' && value >= 0 && part < 4) {
        bytes[part++] = (byte) value;
        value = -1;
      } else {
        return null;
      }
    }
    return part == 4 ? bytes : null;
  }
}
