-- wrk.lua: the soak test's wrk script (tests/soak.sh): requests spread over the three
-- apps (GET /a/, GET /b/, POST /up/ with a body), statuses counted per thread, and one
-- machine-readable line at the end:
--   wrk requests=N connect=N read=N write=N timeout=N non2xx=N status_404=N ...

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   statuses = {}
   local body = string.rep("soak-wrk ", 200)
   local post = {["Content-Type"] = "application/x-soak"}
   plan = {
      wrk.format("GET", "/a/wrk"),
      wrk.format("GET", "/b/wrk"),
      wrk.format("POST", "/up/wrk", post, body),
   }
   sent = 0
end

function request()
   sent = sent + 1
   return plan[sent % #plan + 1]
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local total, non2xx = {}, 0
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses")) do
         total[status] = (total[status] or 0) + count
         if status < 200 or status > 299 then
            non2xx = non2xx + count
         end
      end
   end
   local e = summary.errors
   local line = string.format("wrk requests=%d connect=%d read=%d write=%d timeout=%d non2xx=%d",
                              summary.requests, e.connect, e.read, e.write, e.timeout, non2xx)
   local codes = {}
   for status in pairs(total) do
      table.insert(codes, status)
   end
   table.sort(codes)
   for _, status in ipairs(codes) do
      if status < 200 or status > 299 then
         line = line .. string.format(" status_%d=%d", status, total[status])
      end
   end
   io.write(line .. "\n")
end
