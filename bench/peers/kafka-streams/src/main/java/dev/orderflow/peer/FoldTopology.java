package dev.orderflow.peer;

import java.nio.ByteBuffer;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.processor.api.FixedKeyProcessor;
import org.apache.kafka.streams.processor.api.FixedKeyProcessorContext;
import org.apache.kafka.streams.processor.api.FixedKeyRecord;
import org.apache.kafka.streams.processor.api.RecordMetadata;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * The peer's topology: every event of TOPIC folded per key into one persistent key-value
 * store (groupByKey().aggregate()), each record's offset reported to a {@link Progress}
 * once its aggregate is in the store. The same topology builds the store and, started
 * with no local state, restores it from its changelog.
 */
final class FoldTopology {

    /** The store, and so the changelog topic: APPLICATION_ID-orders-fold-changelog. */
    static final String STORE = "orders-fold";

    private FoldTopology() {
    }

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
            .aggregate(FoldTopology::initial, FoldTopology::fold, store);
        return builder.build();
    }
}
