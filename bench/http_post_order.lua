-- wrk script: POST /orders, a new valid order per request (one line of
-- espresso beans, the SKU with the most stock; customers rotate), each
-- answered once the log acknowledged it. Prints the latency percentiles in
-- microseconds, one line.
local counter = 0
local headers = { ["Content-Type"] = "application/json" }

function setup(thread)
  thread:set("offset", counter * 100000)
  counter = counter + 1
end

function init(args)
  i = offset or 0
end

function request()
  i = i + 1
  local body = string.format('{"customer_id":"cust-bench-%d","lines":[{"sku":"SKU-ESPRESSO","quantity":1}]}', i % 997)
  return wrk.format("POST", "/orders", headers, body)
end

function done(summary, latency, requests)
  io.write(string.format("p50_us=%d p90_us=%d p99_us=%d p999_us=%d requests=%d errors_status=%d\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    summary.requests, summary.errors.status))
end
