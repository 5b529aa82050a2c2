-- wrk script: prints the latency percentiles in microseconds, one line.
function done(summary, latency, requests)
  io.write(string.format("p50_us=%d p90_us=%d p99_us=%d p999_us=%d requests=%d errors_status=%d\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    summary.requests, summary.errors.status))
end
