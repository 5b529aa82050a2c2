package dev.orderflow.peer;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.LongAdder;

/**
 * Knows, per input partition, the offset of the last record that was in the topic at
 * start, and counts down as each partition's last record has been folded. Offsets are
 * compared to the last record's offset, not to the end offset, because orderflow writes
 * orders.events in transactions: a partition's end offset is then past a commit marker
 * that no consumer ever sees as a record.
 */
final class Progress {
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
            caughtUpCpuNanos.set(RestoreBench.processCpuNanos());
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
            caughtUpCpuNanos.set(RestoreBench.processCpuNanos());
            caughtUp.countDown();
        }
    }
}
