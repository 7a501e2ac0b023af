-- wrk hook that prints the run's summary as one JSON line, for bench/run.py.
-- The line starts with "KARAK_BENCH_JSON " so the driver never has to parse wrk's
-- human-readable table. Latencies are in microseconds, duration too.
-- errors.status is wrk's count of responses with a status >= 400; the driver
-- checks beforehand that every endpoint answers 200, so a 3xx cannot hide here.

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'KARAK_BENCH_JSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"min":%d,"max":%d,"mean":%.2f,"stdev":%.2f,' ..
      '"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.max, latency.mean, latency.stdev,
      latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9)))
end
