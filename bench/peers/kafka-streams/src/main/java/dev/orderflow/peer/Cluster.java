package dev.orderflow.peer;

import java.time.Duration;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RemoveMembersFromConsumerGroupOptions;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;

/**
 * What the peer asks the cluster outside Kafka Streams: partition counts and offsets
 * (Admin), the last record below each partition's end (a consumer), and removing an
 * application's group members between runs.
 */
final class Cluster {

    static final Duration ADMIN_TIMEOUT = Duration.ofSeconds(60);

    private Cluster() {
    }

    static Admin admin(final String bootstrap) {
        final Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        return Admin.create(p);
    }

    static int partitionCount(final Admin admin, final String topic) throws Exception {
        final TopicDescription description = admin.describeTopics(List.of(topic))
            .allTopicNames().get(ADMIN_TIMEOUT.toSeconds(), TimeUnit.SECONDS).get(topic);
        return description.partitions().size();
    }

    static Map<TopicPartition, Long> offsets(final Admin admin, final String topic,
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
    static long[] lastRecordOffsets(final KafkaConsumer<byte[], byte[]> consumer, final String topic,
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
    static void removeGroupMembers(final String bootstrap, final String applicationId) {
        try (Admin admin = admin(bootstrap)) {
            admin.removeMembersFromConsumerGroup(applicationId,
                    new RemoveMembersFromConsumerGroupOptions())
                .all().get(ADMIN_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        } catch (final Exception e) {
            System.err.println("build: could not remove the group's members (a restore now waits for "
                + "their session timeout): " + e);
        }
    }
}
