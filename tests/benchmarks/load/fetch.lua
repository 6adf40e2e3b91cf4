-- Client policy fetch. Arguments: <sdk key> <etag or "-"> [delay ms]. With an ETag every request
-- sends If-None-Match and must answer 304; without, 200 with the document.
package.path = debug.getinfo(1, "S").source:match("@(.*/)") .. "?.lua;" .. package.path
require "common"

function init(args)
   wrk.headers["Authorization"] = "Bearer " .. args[1]
   expect = 200
   if args[2] ~= "-" then
      wrk.headers["If-None-Match"] = args[2]
      expect = 304
   end
   delay_ms = tonumber(args[3] or "0")
end

function response(status, headers, body)
   if status == expect and expect == 304 then
      not_modified = not_modified + 1
   elseif status == expect and #body > 0 then
      ok = ok + 1
   else
      bad = bad + 1
   end
end

function done(summary, latency, requests)
   report(summary, latency)
end
