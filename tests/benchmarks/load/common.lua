-- Shared by the load scripts: per-status counters in each wrk thread, one JSON line at the end.
threads = {}
ok, not_modified, bad, short = 0, 0, 0, 0
delay_ms = 0

function setup(thread)
   table.insert(threads, thread)
end

function delay()
   return delay_ms
end

function report(summary, latency)
   local totals = {ok = 0, not_modified = 0, bad = 0, short = 0}
   for _, t in ipairs(threads) do
      for name, _ in pairs(totals) do
         totals[name] = totals[name] + (t:get(name) or 0)
      end
   end
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
      '"max_us":%d,"ok":%d,"not_modified":%d,"bad":%d,"short":%d,"socket_errors":%d}\n',
      summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, totals.ok, totals.not_modified, totals.bad, totals.short,
      e.connect + e.read + e.write + e.timeout))
end
