"""Live load for ``bench/live_latency.py``: seeded records sent at a steady rate, stamped with the
wall clock at send time.

kafka-python tops out at 7-9k records/s here and takes a core doing it, which the streaming job
under test needs. So the sending is done by a small Java program on Kafka's own client (the
``kafka-clients`` jar of the broker bundle, run as a single-file source program: ``java -cp ...
LiveLoad.java``, no build step), fed with templates from the seeded generator
(:mod:`logstream.devtools.generator`, the records of ``logstream produce``):

* every valid record's time field (ISO-8601, epoch seconds or milliseconds, or an access log's
  ``[dd/MMM/yyyy:HH:mm:ss +0000]``) becomes a slot that the sender fills with the send time (a
  generated late record keeps its lag behind the clock); the Kafka record's timestamp is set to
  the same instant, so ``event_time == kafka_timestamp`` for on-time records and the record that
  closes a window is the first one sent at or after ``window_end + delay``;
* malformed records are sent as generated (they land in ``quarantine``);
* templates are sent in order, round and round, keyed by service as the generator keys them, so
  the generator's bursts (DDoS, scanner, error burst) recur and keep the anomaly rules busy.

The sender reads commands on stdin (``rate N``, ``stop``) and prints ``stat <epoch ms> <sent>
<acked> <failed>`` every second and ``done <sent> <acked> <failed>`` when it has flushed. The
producer is idempotent with ``acks=all`` and a 512 MB buffer, so a broker that is down for a
while delays records instead of losing or duplicating them.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from logstream.config import Settings
from logstream.devtools.generator import GeneratorConfig, iter_logs
from logstream.runtime.jars import bundle_jars
from logstream.runtime.java import find_java

#: Slot kinds: I = ISO-8601 UTC with ms (inside quotes), M = epoch ms, S = epoch s, C = access-log
#: time; N = no slot (sent as generated).
_SLOT = "@@T@@"
_CLF = re.compile(rb"\[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]")

_JAVA = r"""
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.time.*;
import java.time.format.DateTimeFormatter;
import java.util.*;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.producer.*;

public class LiveLoad {
    static final DateTimeFormatter ISO = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")
        .withZone(ZoneOffset.UTC);
    static final DateTimeFormatter CLF = DateTimeFormatter.ofPattern("dd/MMM/yyyy:HH:mm:ss '+0000'",
        Locale.ROOT).withZone(ZoneOffset.UTC);
    static volatile double rate = 0;
    static volatile boolean stop = false;

    static byte[] time(char kind, long ms) {
        String text;
        switch (kind) {
            case 'I': text = ISO.format(Instant.ofEpochMilli(ms)); break;
            case 'M': text = Long.toString(ms); break;
            case 'S': text = Long.toString(ms / 1000); break;
            default: text = CLF.format(Instant.ofEpochMilli(ms));
        }
        return text.getBytes(StandardCharsets.US_ASCII);
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1];
        List<String> lines = Files.readAllLines(Paths.get(args[2]));
        int n = lines.size();
        char[] kind = new char[n]; long[] lag = new long[n];
        byte[][] key = new byte[n][], head = new byte[n][], tail = new byte[n][];
        Base64.Decoder b64 = Base64.getDecoder();
        byte[] slot = "@@T@@".getBytes(StandardCharsets.US_ASCII);
        for (int i = 0; i < n; i++) {
            String[] p = lines.get(i).split("\t", -1);
            kind[i] = p[0].charAt(0); lag[i] = Long.parseLong(p[1]);
            key[i] = p[2].isEmpty() ? null : b64.decode(p[2]);
            byte[] value = b64.decode(p[3]);
            int at = kind[i] == 'N' ? -1 : indexOf(value, slot);
            if (at < 0) { kind[i] = 'N'; head[i] = value; tail[i] = new byte[0]; continue; }
            head[i] = Arrays.copyOfRange(value, 0, at);
            tail[i] = Arrays.copyOfRange(value, at + slot.length, value.length);
        }
        Properties props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("client.id", "logstream-live-load");
        props.put("acks", "all");
        props.put("enable.idempotence", "true");
        props.put("linger.ms", "5");
        props.put("batch.size", "262144");
        props.put("buffer.memory", Long.toString(512L << 20));
        props.put("max.block.ms", "600000");
        props.put("delivery.timeout.ms", "900000");
        props.put("reconnect.backoff.max.ms", "1000");
        props.put("key.serializer", "org.apache.kafka.common.serialization.ByteArraySerializer");
        props.put("value.serializer", "org.apache.kafka.common.serialization.ByteArraySerializer");
        AtomicLong acked = new AtomicLong(), failed = new AtomicLong();
        Callback callback = (meta, error) -> {
            if (error == null) acked.incrementAndGet();
            else failed.incrementAndGet();
        };
        Thread commands = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in))) {
                for (String line; (line = in.readLine()) != null; ) {
                    if (line.startsWith("rate ")) rate = Double.parseDouble(line.substring(5));
                    else if (line.trim().equals("stop")) break;
                }
            } catch (IOException ignored) { }
            stop = true;
        });
        commands.setDaemon(true);
        commands.start();
        long sent = 0, paced = 0;
        int next = 0;
        double pacedRate = -1;
        long base = System.nanoTime(), lastStat = 0;
        byte[][] cache = new byte[128][]; long[] cachedMs = new long[128];
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            while (!stop) {
                long now = System.nanoTime();
                if (rate != pacedRate) { pacedRate = rate; base = now; paced = 0; }
                long due = (long) (pacedRate * (now - base) / 1e9) - paced;
                for (long k = 0; k < due && !stop; k++) {
                    long ms = System.currentTimeMillis();
                    int i = next; next = (next + 1) % n;
                    byte[] value;
                    if (kind[i] == 'N') value = head[i];
                    else {
                        long at = ms - lag[i];
                        int c = kind[i] & 127;  // one cached text per kind, for on-time records
                        byte[] text;
                        if (lag[i] != 0) text = time(kind[i], at);
                        else if (cache[c] != null && cachedMs[c] == at) text = cache[c];
                        else { text = time(kind[i], at); cache[c] = text; cachedMs[c] = at; }
                        value = new byte[head[i].length + text.length + tail[i].length];
                        System.arraycopy(head[i], 0, value, 0, head[i].length);
                        System.arraycopy(text, 0, value, head[i].length, text.length);
                        int end = head[i].length + text.length;
                        System.arraycopy(tail[i], 0, value, end, tail[i].length);
                    }
                    producer.send(new ProducerRecord<>(topic, null, ms, key[i], value), callback);
                    sent++; paced++;
                }
                long wall = System.currentTimeMillis();
                if (wall - lastStat >= 1000) {
                    lastStat = wall;
                    System.out.println(
                        "stat " + wall + " " + sent + " " + acked.get() + " " + failed.get());
                    System.out.flush();
                }
                Thread.sleep(1);
            }
            producer.flush();
        }
        System.out.println("done " + sent + " " + acked.get() + " " + failed.get());
        System.out.flush();
    }

    static int indexOf(byte[] data, byte[] pattern) {
        outer:
        for (int i = 0; i + pattern.length <= data.length; i++) {
            for (int j = 0; j < pattern.length; j++) if (data[i + j] != pattern[j]) continue outer;
            return i;
        }
        return -1;
    }
}
"""


def write_templates(path: Path, count: int, seed: int, topic: str, max_record_bytes: int) -> int:
    """Write ``count`` generated log records as sender templates; returns how many have a slot.

    One line per record: ``kind<TAB>lag ms<TAB>base64 key<TAB>base64 value``.
    """
    config = GeneratorConfig(
        seed=seed, count=count, logs_topic=topic, max_record_bytes=max_record_bytes
    )
    slotted = 0
    with path.open("w") as out:
        for record in iter_logs(config):
            kind, value, lag_ms = "N", record.value, 0
            if record.truth is not None:
                kind, value = _slot(record.fmt, record.value)
                if record.late and record.clock is not None:
                    behind = record.clock - record.truth["event_time"]
                    lag_ms = max(0, round(behind.total_seconds() * 1000))
            slotted += kind != "N"
            key = base64.b64encode(record.key).decode() if record.key else ""
            out.write(f"{kind}\t{lag_ms}\t{key}\t{base64.b64encode(value).decode()}\n")
    return slotted


def _slot(fmt: str, value: bytes) -> tuple[str, bytes]:
    """The record with its time replaced by the slot, and the slot's kind."""
    if not value.startswith(b"{"):
        slotted, found = _CLF.subn(f"[{_SLOT}]".encode(), value, count=1)
        return ("C", slotted) if found else ("N", value)
    stamp = json.loads(value).get("timestamp")
    if isinstance(stamp, str):
        old, kind, new = json.dumps(stamp), "I", f'"{_SLOT}"'
    elif isinstance(stamp, int):
        old, new = str(stamp), _SLOT
        kind = "S" if fmt == "json_epoch_s" else "M"
    else:
        return "N", value
    text = value.decode()
    at = text.find(old)
    if at < 0:
        return "N", value
    return kind, (text[:at] + new + text[at + len(old) :]).encode()


@dataclass
class LoadStats:
    """What the sender reported last."""

    sent: int = 0
    acked: int = 0
    failed: int = 0
    done: bool = False
    history: list[tuple[float, int, int]] = field(default_factory=list)  # (epoch s, sent, acked)


class LiveLoad:
    """The Java sender as a child process: ``set_rate``, then ``stop`` (flushes)."""

    def __init__(self, settings: Settings, workdir: Path, templates: Path, topic: str) -> None:
        source = workdir / "LiveLoad.java"
        source.write_text(_JAVA)
        classpath = os.pathsep.join(str(jar) for jar in bundle_jars(settings, "kafka-broker"))
        self.command = [
            find_java(), "-Xmx768m", "-XX:+UseSerialGC", "-cp", classpath, str(source),
            settings.kafka_bootstrap, topic, str(templates),
        ]  # fmt: skip
        self.log = workdir / "live_load.log"
        self.stats = LoadStats()
        self.process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        with self.log.open("ab") as errors:
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
                text=True, bufsize=1, start_new_session=True,
            )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            parts = line.split()
            if parts[:1] == ["stat"] and len(parts) == 5:
                wall, sent, acked, failed = (int(p) for p in parts[1:])
                self.stats.sent, self.stats.acked, self.stats.failed = sent, acked, failed
                self.stats.history.append((wall / 1000, sent, acked))
            elif parts[:1] == ["done"] and len(parts) == 4:
                self.stats.sent, self.stats.acked, self.stats.failed = (int(p) for p in parts[1:])
                self.stats.done = True

    def _command(self, text: str) -> None:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"the load generator is not running; see {self.log}")
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def set_rate(self, rate: float) -> None:
        self._command(f"rate {rate}")

    def wait_started(self, timeout: float = 60.0) -> None:
        """Until the sender prints its first stat line (the source is compiled, the client up)."""
        deadline = time.monotonic() + timeout
        while not self.stats.history:
            if (
                self.process is None
                or self.process.poll() is not None
                or time.monotonic() > deadline
            ):
                raise RuntimeError(f"the load generator did not start; see {self.log}")
            time.sleep(0.2)

    def stop(self, timeout: float = 120.0) -> LoadStats:
        """Stop sending, flush what is buffered, and return the final counts."""
        if self.process is None:
            return self.stats
        try:
            self._command("stop")
            self.process.wait(timeout=timeout)
        except (RuntimeError, subprocess.TimeoutExpired, BrokenPipeError):
            self.kill()
        if self._reader is not None:
            self._reader.join(timeout=5)
        return self.stats

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def rate_between(self, start: float, end: float) -> float:
        """Records sent per second between two epoch-second instants (from the stat lines)."""
        inside = [(t, sent) for t, sent, _ in self.stats.history if start <= t <= end]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return 0.0
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])
