-- wrk script: GET /orders/{id} over ids read from the file named by IDS_FILE
-- (one order id per line), in a different order per connection.
local ids = {}
local counter = 0

function setup(thread)
  thread:set("offset", counter * 7919)
  counter = counter + 1
end

function init(args)
  local path = os.getenv("IDS_FILE") or "ids.txt"
  for line in io.lines(path) do
    if #line > 0 then ids[#ids + 1] = line end
  end
  if #ids == 0 then error("no order ids in " .. path) end
  i = offset or 0
end

function request()
  i = i + 1
  return wrk.format("GET", "/orders/" .. ids[(i % #ids) + 1])
end

function done(summary, latency, requests)
  io.write(string.format("p50_us=%d p90_us=%d p99_us=%d p999_us=%d requests=%d errors_status=%d\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    summary.requests, summary.errors.status))
end
