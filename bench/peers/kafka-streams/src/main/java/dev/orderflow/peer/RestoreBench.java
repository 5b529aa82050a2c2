package dev.orderflow.peer;

import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;

/**
 * The Kafka Streams peer of orderflow's rebuild (bench/peers/kafka-streams/README.md).
 *
 * <pre>
 * java -jar kafka-streams-peer.jar BOOTSTRAP TOPIC APPLICATION_ID build|restore STATE_DIR
 *      [--no-changelog] [--threads N] [--timeout-seconds S]
 * </pre>
 *
 * build: folds TOPIC from its earliest offset, per key, into Kafka Streams' default
 * persistent (RocksDB) key-value store through groupByKey().aggregate(), and stops once
 * every record that was in TOPIC at start has been folded.
 * restore: wipes this application's local state and starts the same topology, so that
 * Kafka Streams rebuilds the store from its changelog topic; stops once every changelog
 * partition has been restored and the application is RUNNING.
 *
 * Prints one JSON line to stdout; progress goes to stderr.
 */
public final class RestoreBench {

    private RestoreBench() {
    }

    // --------------------------------------------------------------------- main

    public static void main(final String[] args) throws Exception {
        final List<String> positional = new ArrayList<>();
        boolean changelog = true;
        int threads = 2;
        long timeoutSeconds = 3600;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--no-changelog":
                    changelog = false;
                    break;
                case "--threads":
                    threads = Integer.parseInt(args[++i]);
                    break;
                case "--timeout-seconds":
                    timeoutSeconds = Long.parseLong(args[++i]);
                    break;
                case "-h":
                case "--help":
                    usage(0);
                    break;
                default:
                    if (args[i].startsWith("--")) {
                        System.err.println("unknown option " + args[i]);
                        usage(2);
                    }
                    positional.add(args[i]);
            }
        }
        if (positional.size() != 5) {
            usage(2);
        }
        final String bootstrap = positional.get(0);
        final String topic = positional.get(1);
        final String applicationId = positional.get(2);
        final String mode = positional.get(3);
        final String stateDir = positional.get(4);
        if (!mode.equals("build") && !mode.equals("restore")) {
            usage(2);
        }
        if (mode.equals("restore") && !changelog) {
            System.err.println("restore needs the changelog: --no-changelog is for build only");
            System.exit(2);
        }

        final Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
        // Everything else is Kafka Streams 3.9.1's default: at-least-once, commit every 30 s,
        // 10 MiB record cache, auto.offset.reset=earliest, RocksDB with its default config.

        final int exit = mode.equals("build")
            ? build(props, bootstrap, topic, applicationId, changelog, threads, timeoutSeconds)
            : restore(props, bootstrap, topic, applicationId, threads, timeoutSeconds);
        System.exit(exit);
    }

    private static void usage(final int code) {
        (code == 0 ? System.out : System.err).println(
            "usage: java -jar kafka-streams-peer.jar BOOTSTRAP TOPIC APPLICATION_ID build|restore STATE_DIR\n"
            + "         [--no-changelog] [--threads N (default 2)] [--timeout-seconds S (default 3600)]\n"
            + "  build:   fold TOPIC from its earliest offset into the RocksDB store '" + FoldTopology.STORE + "'\n"
            + "           (a fresh APPLICATION_ID: it must have no committed offsets);\n"
            + "           --no-changelog disables the store's changelog\n"
            + "  restore: wipe STATE_DIR/APPLICATION_ID and restore the store from\n"
            + "           APPLICATION_ID-" + FoldTopology.STORE + "-changelog (after a build with the same arguments)");
        System.exit(code);
    }

    private static KafkaStreams streams(final Topology topology, final Properties props,
                                        final AtomicReference<Throwable> failure,
                                        final CountDownLatch failed,
                                        final Consumer<KafkaStreams.State> onState) {
        final KafkaStreams streams = new KafkaStreams(topology, props);
        streams.setUncaughtExceptionHandler(e -> {
            failure.compareAndSet(null, e);
            failed.countDown();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.setStateListener((next, previous) -> {
            System.err.println("kafka streams: " + previous + " -> " + next);
            if (next == KafkaStreams.State.ERROR || next == KafkaStreams.State.PENDING_ERROR) {
                failure.compareAndSet(null, new IllegalStateException("Kafka Streams went to " + next));
                failed.countDown();
            }
            onState.accept(next);
        });
        return streams;
    }

    private static double seconds(final long nanos) {
        return nanos / 1e9;
    }

    /** CPU time of this whole process (every thread, user + system), or -1 when the JVM cannot tell. */
    static long processCpuNanos() {
        final java.lang.management.OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
        return os instanceof com.sun.management.OperatingSystemMXBean
            ? ((com.sun.management.OperatingSystemMXBean) os).getProcessCpuTime() : -1;
    }

    /** The process's CPU seconds between two processCpuNanos() readings, as JSON (null if unknown). */
    private static String cpuSeconds(final long from, final long to) {
        return from < 0 || to < 0 ? "null" : String.format(Locale.ROOT, "%.3f", seconds(to - from));
    }

    private static int build(final Properties props, final String bootstrap, final String topic,
                             final String applicationId, final boolean changelog, final int threads,
                             final long timeoutSeconds) throws Exception {
        final int partitions;
        final long[] lastOffset;
        long offsetSpan = 0;
        try (Admin admin = Cluster.admin(bootstrap)) {
            final Map<TopicPartition, OffsetAndMetadata> committed = admin
                .listConsumerGroupOffsets(applicationId).partitionsToOffsetAndMetadata()
                .get(Cluster.ADMIN_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            if (committed != null && !committed.isEmpty()) {
                System.err.println("application.id " + applicationId + " already has committed offsets: "
                    + "build reads from the earliest offset only under a fresh application.id");
                return 2;
            }
            partitions = Cluster.partitionCount(admin, topic);
            final Map<TopicPartition, Long> begin = Cluster.offsets(admin, topic, partitions, OffsetSpec.earliest());
            final Map<TopicPartition, Long> end = Cluster.offsets(admin, topic, partitions, OffsetSpec.latest());
            final Properties c = new Properties();
            c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            // Kafka Streams' own consumer reads read_uncommitted under at-least-once; so does this.
            c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_uncommitted");
            try (KafkaConsumer<byte[], byte[]> consumer =
                     new KafkaConsumer<>(c, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
                for (int p = 0; p < partitions; p++) {
                    final TopicPartition tp = new TopicPartition(topic, p);
                    offsetSpan += end.get(tp) - begin.get(tp);
                }
                lastOffset = Cluster.lastRecordOffsets(consumer, topic, partitions, begin, end);
            }
        }
        System.err.printf(Locale.ROOT, "build: %s has %d partitions, %d offsets to read; %s changelog, %d threads%n",
            topic, partitions, offsetSpan, changelog ? "with" : "without", threads);

        final Progress progress = new Progress(lastOffset);
        final AtomicReference<Throwable> failure = new AtomicReference<>();
        final CountDownLatch failed = new CountDownLatch(1);
        final KafkaStreams streams = streams(FoldTopology.topology(topic, changelog, progress), props, failure, failed, state -> { });
        streams.cleanUp();  // a fresh local state directory for this application.id

        final long startCpuNanos = processCpuNanos();
        final long startNanos = System.nanoTime();
        streams.start();
        final long deadline = startNanos + TimeUnit.SECONDS.toNanos(timeoutSeconds);
        long lastReport = startNanos;
        while (!progress.caughtUp.await(100, TimeUnit.MILLISECONDS)) {
            if (failed.getCount() == 0) {
                break;
            }
            final long now = System.nanoTime();
            if (now - lastReport >= TimeUnit.SECONDS.toNanos(5)) {
                lastReport = now;
                System.err.printf(Locale.ROOT, "build: %.0f s, %d records folded, %d of %d partitions caught up%n",
                    seconds(now - startNanos), progress.records.sum(),
                    partitions - progress.remaining.get(), partitions);
            }
            if (now > deadline) {
                failure.compareAndSet(null, new IllegalStateException("not caught up after " + timeoutSeconds + " s"));
                break;
            }
        }
        final long caughtUpNanos = progress.caughtUpNanos.get();
        final long records = progress.records.sum();
        System.err.printf(Locale.ROOT, "build: %s after %.3f s with %d records; closing%n",
            failure.get() == null ? "caught up" : "stopped", seconds(System.nanoTime() - startNanos), records);

        // close() flushes the record cache into RocksDB and the changelog, commits the input
        // offsets and writes the checkpoint: after it a restore finds everything.
        final long closeStart = System.nanoTime();
        final boolean closed = streams.close(Duration.ofMinutes(5));
        final double closeSeconds = seconds(System.nanoTime() - closeStart);
        Cluster.removeGroupMembers(bootstrap, applicationId);
        if (failure.get() != null) {
            System.err.println("build failed: " + failure.get());
            failure.get().printStackTrace();
            return 1;
        }
        if (!closed) {
            System.err.println("build: Kafka Streams did not close within 5 minutes");
            return 1;
        }
        final double s = seconds(caughtUpNanos - startNanos);
        final Long firstRecord = progress.firstRecordNanos.get() == 0 ? null : progress.firstRecordNanos.get();
        System.out.printf(Locale.ROOT,
            "{\"mode\":\"build\",\"records\":%d,\"seconds\":%.3f,\"records_per_second\":%.0f,\"cpu_seconds\":%s,"
                + "\"first_record_seconds\":%s,\"close_seconds\":%.3f,\"changelog\":%b,\"partitions\":%d,\"threads\":%d}%n",
            records, s, s > 0 ? records / s : 0.0, cpuSeconds(startCpuNanos, progress.caughtUpCpuNanos.get()),
            firstRecord == null ? "null" : String.format(Locale.ROOT, "%.3f", seconds(firstRecord - startNanos)),
            closeSeconds, changelog, partitions, threads);
        return 0;
    }

    private static int restore(final Properties props, final String bootstrap, final String topic,
                               final String applicationId, final int threads, final long timeoutSeconds)
            throws Exception {
        final String changelogTopic = applicationId + "-" + FoldTopology.STORE + "-changelog";
        final int partitions;
        long changelogOffsets = 0;
        try (Admin admin = Cluster.admin(bootstrap)) {
            try {
                partitions = Cluster.partitionCount(admin, changelogTopic);
            } catch (final java.util.concurrent.ExecutionException e) {
                if (e.getCause() instanceof UnknownTopicOrPartitionException) {
                    System.err.println("no changelog topic " + changelogTopic
                        + ": run build (with the changelog) under this application.id first");
                    return 2;
                }
                throw e;
            }
            final Map<TopicPartition, Long> begin = Cluster.offsets(admin, changelogTopic, partitions, OffsetSpec.earliest());
            final Map<TopicPartition, Long> end = Cluster.offsets(admin, changelogTopic, partitions, OffsetSpec.latest());
            for (final TopicPartition tp : end.keySet()) {
                changelogOffsets += end.get(tp) - begin.get(tp);
            }
        }
        System.err.printf(Locale.ROOT, "restore: %s has %d partitions, %d offsets; %d threads%n",
            changelogTopic, partitions, changelogOffsets, threads);

        final Restoration restoration = new Restoration(partitions);
        final AtomicReference<Throwable> failure = new AtomicReference<>();
        final CountDownLatch failed = new CountDownLatch(1);
        final CountDownLatch running = new CountDownLatch(1);
        final AtomicLong runningNanos = new AtomicLong();
        final KafkaStreams streams = streams(FoldTopology.topology(topic, true, new Progress(new long[0])), props, failure, failed,
            state -> {
                if (state == KafkaStreams.State.RUNNING && restoration.allEnded.getCount() == 0) {
                    runningNanos.compareAndSet(0, System.nanoTime());
                    running.countDown();
                }
            });
        streams.setGlobalStateRestoreListener(restoration);
        streams.cleanUp();  // wipes STATE_DIR/APPLICATION_ID: the store must come from the changelog

        final long startNanos = System.nanoTime();
        streams.start();
        final long deadline = startNanos + TimeUnit.SECONDS.toNanos(timeoutSeconds);
        long lastReport = startNanos;
        while (true) {
            if (restoration.allEnded.getCount() == 0) {
                // RUNNING may have come before the last onRestoreEnd returned: look again.
                if (streams.state() == KafkaStreams.State.RUNNING) {
                    runningNanos.compareAndSet(0, System.nanoTime());
                    running.countDown();
                }
                if (running.await(100, TimeUnit.MILLISECONDS)) {
                    break;
                }
            } else {
                restoration.allEnded.await(100, TimeUnit.MILLISECONDS);
            }
            if (failed.getCount() == 0) {
                break;
            }
            final long now = System.nanoTime();
            if (now - lastReport >= TimeUnit.SECONDS.toNanos(5)) {
                lastReport = now;
                System.err.printf(Locale.ROOT, "restore: %.0f s, %d of %d records restored, %d of %d partitions done%n",
                    seconds(now - startNanos), restoration.restored.sum(), restoration.toRestore.get(),
                    restoration.ended.size(), partitions);
            }
            if (now > deadline) {
                failure.compareAndSet(null, new IllegalStateException("not restored after " + timeoutSeconds + " s"));
                break;
            }
        }
        final long records = restoration.restored.sum();
        System.err.printf(Locale.ROOT, "restore: %s after %.3f s with %d records; closing%n",
            failure.get() == null ? "restored and running" : "stopped",
            seconds(System.nanoTime() - startNanos), records);
        final boolean closed = streams.close(Duration.ofMinutes(5));
        if (failure.get() != null) {
            System.err.println("restore failed: " + failure.get());
            failure.get().printStackTrace();
            return 1;
        }
        if (!closed) {
            System.err.println("restore: Kafka Streams did not close within 5 minutes");
            return 1;
        }
        final double s = seconds(restoration.endNanos.get() - restoration.startNanos.get());
        System.out.printf(Locale.ROOT,
            "{\"mode\":\"restore\",\"records\":%d,\"seconds\":%.3f,\"records_per_second\":%.0f,\"cpu_seconds\":%s,"
                + "\"seconds_from_start\":%.3f,\"running_seconds\":%.3f,\"partitions\":%d,\"threads\":%d}%n",
            records, s, s > 0 ? records / s : 0.0,
            cpuSeconds(restoration.startCpuNanos.get(), restoration.endCpuNanos.get()),
            seconds(restoration.endNanos.get() - startNanos), seconds(runningNanos.get() - startNanos),
            partitions, threads);
        return 0;
    }
}
