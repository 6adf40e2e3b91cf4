-- Decision ingestion: each request a batch of fresh records with unique event ids.
-- Arguments: <sdk key> <timestamp> <records per batch> <8 hex digits unique to this run> [delay ms].
-- Event ids are <prefix>-0000-4000-8000-<counter>, so no two requests of any run share one.
package.path = debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua;" .. package.path
require "common"

local TASKS = {{"faq", "gpt-4o-mini", "openai"}, {"troubleshooting", "gpt-4.1-mini", "openai"},
               {"billing", "claude-sonnet-4-5", "anthropic"}}
local OUTCOMES = {"ok", "ok", "ok", "ok", "ok", "ok", "low_confidence", "error", "timeout"}
local counter = 0

function init(args)
   wrk.method = "POST"
   wrk.headers["Authorization"] = "Bearer " .. args[1]
   wrk.headers["Content-Type"] = "application/json"
   timestamp = args[2]
   batch = tonumber(args[3])
   prefix = args[4]
   delay_ms = tonumber(args[5] or "0")
   expected = string.format('"accepted":%d,"duplicates":0,"rejected":0', batch)
end

function request()
   local parts = {}
   for i = 1, batch do
      counter = counter + 1
      local task = TASKS[counter % #TASKS + 1]
      parts[i] = string.format(
         '{"event_id":"%s-0000-4000-8000-%012x","timestamp":"%s","policy":"support-assistant",' ..
         '"policy_version":1,"route":"%s","task_type":"%s","model":"%s","provider":"%s","tier":1,' ..
         '"attempt":1,"request_id":"r%d","reason":{"route_by":"task_type","tier_by":"start"},' ..
         '"outcome":"%s","confidence":0.%03d,"tokens_in":%d,"tokens_out":%d,"latency_ms":%d.5,' ..
         '"client":{"app":"load","instance":"wrk:%s","sdk_version":"0.1.0"},"attributes":{"user_tier":"pro"}}',
         prefix, counter, timestamp, task[1], task[1], task[2], task[3], counter,
         OUTCOMES[counter % #OUTCOMES + 1], counter % 1000, 100 + counter % 4000, 10 + counter % 500,
         50 + counter % 3000, prefix)
   end
   return wrk.format(nil, nil, nil, '{"decisions":[' .. table.concat(parts, ",") .. "]}")
end

function response(status, headers, body)
   if status ~= 200 then
      bad = bad + 1
   elseif body:find(expected, 1, true) then
      ok = ok + 1
   else
      short = short + 1
   end
end

function done(summary, latency, requests)
   report(summary, latency)
end
