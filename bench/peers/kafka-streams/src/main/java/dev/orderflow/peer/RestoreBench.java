package dev.orderflow.peer;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Consumer;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RemoveMembersFromConsumerGroupOptions;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.processor.api.FixedKeyProcessor;
import org.apache.kafka.streams.processor.api.FixedKeyProcessorContext;
import org.apache.kafka.streams.processor.api.FixedKeyRecord;
import org.apache.kafka.streams.processor.api.RecordMetadata;
import org.apache.kafka.streams.state.KeyValueStore;

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

    /** The store, and so the changelog topic: APPLICATION_ID-orders-fold-changelog. */
    static final String STORE = "orders-fold";

    private static final Duration ADMIN_TIMEOUT = Duration.ofSeconds(60);

    private RestoreBench() {
    }

    // ---------------------------------------------------------------- the fold

    /**
     * The aggregate of one order key, 16 + n bytes: event count (8 bytes, big-endian),
     * total bytes of the values seen (8 bytes), then the last event's value bytes (n).
     * Every event is looked at: its size is added and it replaces the kept value.
     */
    static byte[] initial() {
        return new byte[16];
    }

    static byte[] fold(final String key, final byte[] value, final byte[] aggregate) {
        final ByteBuffer previous = ByteBuffer.wrap(aggregate);
        final long count = previous.getLong(0);
        final long totalBytes = previous.getLong(8);
        final int length = value == null ? 0 : value.length;
        final byte[] next = new byte[16 + length];
        final ByteBuffer out = ByteBuffer.wrap(next);
        out.putLong(count + 1);
        out.putLong(totalBytes + length);
        if (length > 0) {
            out.put(value);
        }
        return next;
    }

    // ------------------------------------------------- end of input (build mode)

    /**
     * Knows, per input partition, the offset of the last record that was in the topic at
     * start, and counts down as each partition's last record has been folded. Offsets are
     * compared to the last record's offset, not to the end offset, because orderflow writes
     * orders.events in transactions: a partition's end offset is then past a commit marker
     * that no consumer ever sees as a record.
     */
    static final class Progress {
        final LongAdder records = new LongAdder();
        final long[] lastOffset;           // per partition; -1 when it has no record
        final AtomicLongArray done;        // per partition: 1 once its last record is folded
        final AtomicInteger remaining;
        final CountDownLatch caughtUp = new CountDownLatch(1);
        final AtomicLong caughtUpNanos = new AtomicLong();
        final AtomicLong caughtUpCpuNanos = new AtomicLong(-1);
        final AtomicLong firstRecordNanos = new AtomicLong();

        Progress(final long[] lastOffset) {
            this.lastOffset = lastOffset;
            this.done = new AtomicLongArray(lastOffset.length);
            int waiting = 0;
            for (int p = 0; p < lastOffset.length; p++) {
                if (lastOffset[p] < 0) {
                    done.set(p, 1);
                } else {
                    waiting++;
                }
            }
            this.remaining = new AtomicInteger(waiting);
            if (waiting == 0) {
                caughtUpNanos.set(System.nanoTime());
                caughtUpCpuNanos.set(processCpuNanos());
                caughtUp.countDown();
            }
        }

        /** Called after the record at (partition, offset) went through the aggregation. */
        void folded(final int partition, final long offset) {
            records.increment();
            if (firstRecordNanos.get() == 0) {
                firstRecordNanos.compareAndSet(0, System.nanoTime());
            }
            if (partition < lastOffset.length && offset >= lastOffset[partition]
                    && lastOffset[partition] >= 0 && done.compareAndSet(partition, 0, 1)
                    && remaining.decrementAndGet() == 0) {
                caughtUpNanos.set(System.nanoTime());
                caughtUpCpuNanos.set(processCpuNanos());
                caughtUp.countDown();
            }
        }
    }

    /**
     * Passes each event on unchanged to the aggregation, then records its offset: forward()
     * returns only after the aggregate processor has put the new aggregate into the store.
     */
    static final class Tracker implements FixedKeyProcessor<String, byte[], byte[]> {
        private final Progress progress;
        private FixedKeyProcessorContext<String, byte[]> context;

        Tracker(final Progress progress) {
            this.progress = progress;
        }

        @Override
        public void init(final FixedKeyProcessorContext<String, byte[]> context) {
            this.context = context;
        }

        @Override
        public void process(final FixedKeyRecord<String, byte[]> record) {
            final RecordMetadata metadata = context.recordMetadata().orElse(null);
            context.forward(record);
            if (metadata != null) {
                progress.folded(metadata.partition(), metadata.offset());
            }
        }
    }

    static Topology topology(final String topic, final boolean changelog, final Progress progress) {
        final StreamsBuilder builder = new StreamsBuilder();
        final KStream<String, byte[]> events =
            builder.stream(topic, Consumed.with(Serdes.String(), Serdes.ByteArray()));
        Materialized<String, byte[], KeyValueStore<Bytes, byte[]>> store =
            Materialized.<String, byte[], KeyValueStore<Bytes, byte[]>>as(STORE)
                .withKeySerde(Serdes.String())
                .withValueSerde(Serdes.ByteArray());
        if (!changelog) {
            store = store.withLoggingDisabled();
        }
        events
            .processValues(() -> new Tracker(progress))
            .groupByKey(Grouped.with(Serdes.String(), Serdes.ByteArray()))
            .aggregate(RestoreBench::initial, RestoreBench::fold, store);
        return builder.build();
    }

    // ------------------------------------------------------------------ restore

    /** Counts restored records and the changelog partitions whose restoration ended. */
    static final class Restoration implements StateRestoreListener {
        final int partitions;
        final LongAdder restored = new LongAdder();
        final AtomicLong toRestore = new AtomicLong();
        final Set<TopicPartition> ended = ConcurrentHashMap.newKeySet();
        final AtomicLong startNanos = new AtomicLong();
        final AtomicLong endNanos = new AtomicLong();
        final AtomicLong startCpuNanos = new AtomicLong(-1);
        final AtomicLong endCpuNanos = new AtomicLong(-1);
        final CountDownLatch allEnded = new CountDownLatch(1);

        Restoration(final int partitions) {
            this.partitions = partitions;
        }

        @Override
        public void onRestoreStart(final TopicPartition partition, final String storeName,
                                   final long startingOffset, final long endingOffset) {
            if (startNanos.compareAndSet(0, System.nanoTime())) {
                startCpuNanos.set(processCpuNanos());
            }
            toRestore.addAndGet(Math.max(0, endingOffset - startingOffset));
        }

        @Override
        public void onBatchRestored(final TopicPartition partition, final String storeName,
                                    final long batchEndOffset, final long numRestored) {
            restored.add(numRestored);
        }

        @Override
        public void onRestoreEnd(final TopicPartition partition, final String storeName,
                                 final long totalRestored) {
            ended.add(partition);
            if (ended.size() >= partitions) {
                endNanos.set(System.nanoTime());
                endCpuNanos.set(processCpuNanos());
                allEnded.countDown();
            }
        }

        @Override
        public void onRestoreSuspended(final TopicPartition partition, final String storeName,
                                       final long totalRestored) {
            // The task moved to the other stream thread mid-restore; it starts again there
            // (from the checkpoint it wrote) and calls onRestoreStart/End again.
            ended.remove(partition);
        }
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
            + "  build:   fold TOPIC from its earliest offset into the RocksDB store '" + STORE + "'\n"
            + "           (a fresh APPLICATION_ID: it must have no committed offsets);\n"
            + "           --no-changelog disables the store's changelog\n"
            + "  restore: wipe STATE_DIR/APPLICATION_ID and restore the store from\n"
            + "           APPLICATION_ID-" + STORE + "-changelog (after a build with the same arguments)");
        System.exit(code);
    }

    private static Admin admin(final String bootstrap) {
        final Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        return Admin.create(p);
    }

    private static int partitionCount(final Admin admin, final String topic) throws Exception {
        final TopicDescription description = admin.describeTopics(List.of(topic))
            .allTopicNames().get(ADMIN_TIMEOUT.toSeconds(), TimeUnit.SECONDS).get(topic);
        return description.partitions().size();
    }

    private static Map<TopicPartition, Long> offsets(final Admin admin, final String topic,
                                                     final int partitions, final OffsetSpec spec)
            throws Exception {
        final Map<TopicPartition, OffsetSpec> request = new HashMap<>();
        for (int p = 0; p < partitions; p++) {
            request.put(new TopicPartition(topic, p), spec);
        }
        final Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> result =
            admin.listOffsets(request).all().get(ADMIN_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        final Map<TopicPartition, Long> out = new HashMap<>();
        result.forEach((tp, info) -> out.put(tp, info.offset()));
        return out;
    }

    /**
     * Per partition, the offset of the last record below its end offset, or -1 when it has
     * none: reads backwards from the end in growing windows (a partition's tail may be
     * transaction markers only, which are no records). Every partition is read at once: one
     * partition after the other would wait, per partition, for the consumer's fetch at the
     * previous partition's end to time out (fetch.max.wait.ms, 500 ms).
     */
    private static long[] lastRecordOffsets(final KafkaConsumer<byte[], byte[]> consumer, final String topic,
                                            final int partitions, final Map<TopicPartition, Long> begin,
                                            final Map<TopicPartition, Long> end) {
        final long[] last = new long[partitions];
        Arrays.fill(last, -1);
        Set<TopicPartition> pending = new HashSet<>();
        for (int p = 0; p < partitions; p++) {
            final TopicPartition tp = new TopicPartition(topic, p);
            if (end.get(tp) > begin.get(tp)) {
                pending.add(tp);
            }
        }
        long window = 64;
        while (!pending.isEmpty()) {
            consumer.assign(pending);
            for (final TopicPartition tp : pending) {
                consumer.seek(tp, Math.max(begin.get(tp), end.get(tp) - window));
            }
            final Set<TopicPartition> reading = new HashSet<>(pending);
            final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (true) {
                reading.removeIf(tp -> consumer.position(tp) >= end.get(tp));
                if (reading.isEmpty()) {
                    break;
                }
                for (final ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    final TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                    if (r.offset() < end.get(tp)) {
                        last[r.partition()] = Math.max(last[r.partition()], r.offset());
                    }
                }
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("timed out reading the tails of " + reading);
                }
            }
            // Partitions whose window held no record: look further back, unless it reached the beginning.
            final long read = window;
            final Set<TopicPartition> next = new HashSet<>();
            for (final TopicPartition tp : pending) {
                if (last[tp.partition()] < 0 && end.get(tp) - read > begin.get(tp)) {
                    next.add(tp);
                }
            }
            pending = next;
            window *= 16;
        }
        consumer.unsubscribe();
        return last;
    }

    /**
     * Removes every member of the application's consumer group. Kafka Streams' consumers do
     * not leave the group when they close (it sets internal.leave.group.on.close=false, and
     * close(CloseOptions.leaveGroup) only removes static members), so without this a restore
     * right after a build would wait for the build's members to time out (session.timeout.ms,
     * 45 s) before it gets its tasks. Done after close, outside every timed span.
     */
    private static void removeGroupMembers(final String bootstrap, final String applicationId) {
        try (Admin admin = admin(bootstrap)) {
            admin.removeMembersFromConsumerGroup(applicationId,
                    new RemoveMembersFromConsumerGroupOptions())
                .all().get(ADMIN_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        } catch (final Exception e) {
            System.err.println("build: could not remove the group's members (a restore now waits for "
                + "their session timeout): " + e);
        }
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
        try (Admin admin = admin(bootstrap)) {
            final Map<TopicPartition, OffsetAndMetadata> committed = admin
                .listConsumerGroupOffsets(applicationId).partitionsToOffsetAndMetadata()
                .get(ADMIN_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            if (committed != null && !committed.isEmpty()) {
                System.err.println("application.id " + applicationId + " already has committed offsets: "
                    + "build reads from the earliest offset only under a fresh application.id");
                return 2;
            }
            partitions = partitionCount(admin, topic);
            final Map<TopicPartition, Long> begin = offsets(admin, topic, partitions, OffsetSpec.earliest());
            final Map<TopicPartition, Long> end = offsets(admin, topic, partitions, OffsetSpec.latest());
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
                lastOffset = lastRecordOffsets(consumer, topic, partitions, begin, end);
            }
        }
        System.err.printf(Locale.ROOT, "build: %s has %d partitions, %d offsets to read; %s changelog, %d threads%n",
            topic, partitions, offsetSpan, changelog ? "with" : "without", threads);

        final Progress progress = new Progress(lastOffset);
        final AtomicReference<Throwable> failure = new AtomicReference<>();
        final CountDownLatch failed = new CountDownLatch(1);
        final KafkaStreams streams = streams(topology(topic, changelog, progress), props, failure, failed, state -> { });
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
        removeGroupMembers(bootstrap, applicationId);
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
        final String changelogTopic = applicationId + "-" + STORE + "-changelog";
        final int partitions;
        long changelogOffsets = 0;
        try (Admin admin = admin(bootstrap)) {
            try {
                partitions = partitionCount(admin, changelogTopic);
            } catch (final java.util.concurrent.ExecutionException e) {
                if (e.getCause() instanceof UnknownTopicOrPartitionException) {
                    System.err.println("no changelog topic " + changelogTopic
                        + ": run build (with the changelog) under this application.id first");
                    return 2;
                }
                throw e;
            }
            final Map<TopicPartition, Long> begin = offsets(admin, changelogTopic, partitions, OffsetSpec.earliest());
            final Map<TopicPartition, Long> end = offsets(admin, changelogTopic, partitions, OffsetSpec.latest());
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
        final KafkaStreams streams = streams(topology(topic, true, new Progress(new long[0])), props, failure, failed,
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
