package dev.logstream.hdfs;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.CountDownLatch;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.MiniDFSCluster;

/**
 * One NameNode and one DataNode of Apache Hadoop's MiniDFSCluster on 127.0.0.1: a real HDFS
 * (RPC and WebHDFS) for logstream's tests and local runs, run by logstream.runtime.hdfs.
 *
 * <p>Usage: {@code MiniHdfs <base dir> <namenode rpc port> <namenode http port> <ready file>}.
 * The file system lives under the base dir and survives a restart (it is formatted only when the
 * base dir holds none yet). Once the DataNode has registered, the ports are written to the ready
 * file (JSON, replaced in one step) and a line {@code ready hdfs://127.0.0.1:<port>} is printed;
 * the cluster then runs until the process is terminated (SIGTERM shuts it down cleanly).
 * Permission checks are off: a local cluster has one user.
 */
public final class MiniHdfs {
  private MiniHdfs() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 4) {
      System.err.println("usage: MiniHdfs <base dir> <rpc port> <http port> <ready file>");
      System.exit(2);
    }
    File base = new File(args[0]).getAbsoluteFile();
    int rpcPort = Integer.parseInt(args[1]);
    int httpPort = Integer.parseInt(args[2]);
    Path ready = Paths.get(args[3]).toAbsolutePath();
    Files.deleteIfExists(ready);

    Configuration conf = new Configuration();
    conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, base.getPath());
    conf.setBoolean("dfs.permissions.enabled", false);
    conf.setBoolean("dfs.webhdfs.enabled", true);
    conf.set("dfs.namenode.rpc-bind-host", "127.0.0.1");
    conf.set("dfs.namenode.http-bind-host", "127.0.0.1");
    // the DataNode registers (and WebHDFS redirects clients) by address, not by host name
    conf.set("dfs.datanode.hostname", "127.0.0.1");
    conf.set("dfs.datanode.address", "127.0.0.1:0");
    conf.set("dfs.datanode.http.address", "127.0.0.1:0");
    conf.set("dfs.datanode.ipc.address", "127.0.0.1:0");
    // one DataNode: never wait for, or try to add, a second replica
    conf.setInt("dfs.replication", 1);
    conf.set("dfs.client.block.write.replace-datanode-on-failure.enable", "false");
    // a small local disk must not put the NameNode in safe mode
    conf.setLong("dfs.namenode.resource.du.reserved", 0L);
    conf.setLong("dfs.datanode.du.reserved", 0L);

    boolean format = !new File(base, "name1").isDirectory();
    MiniDFSCluster cluster =
        new MiniDFSCluster.Builder(conf, base)
            .numDataNodes(1)
            .nameNodePort(rpcPort)
            .nameNodeHttpPort(httpPort)
            .format(format)
            .manageNameDfsDirs(true)
            .manageDataDfsDirs(true)
            .waitSafeMode(true)
            .build();
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  try {
                    cluster.shutdown();
                  } finally {
                    stopped.countDown();
                  }
                }));
    cluster.waitActive();
    int rpc = cluster.getNameNodePort();
    int http = cluster.getNameNode().getHttpAddress().getPort();
    String json = String.format("{\"rpc_port\": %d, \"http_port\": %d}%n", rpc, http);
    Path tmp = ready.resolveSibling(ready.getFileName() + ".tmp");
    Files.write(tmp, json.getBytes(StandardCharsets.UTF_8));
    Files.move(tmp, ready, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    System.out.println("ready hdfs://127.0.0.1:" + rpc + " webhdfs http://127.0.0.1:" + http);
    System.out.flush();
    stopped.await();
  }
}
