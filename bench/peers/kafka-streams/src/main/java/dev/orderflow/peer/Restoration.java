package dev.orderflow.peer;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.streams.processor.StateRestoreListener;

/** Counts restored records and the changelog partitions whose restoration ended. */
final class Restoration implements StateRestoreListener {
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
            startCpuNanos.set(RestoreBench.processCpuNanos());
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
            endCpuNanos.set(RestoreBench.processCpuNanos());
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
