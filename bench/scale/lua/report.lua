-- Shared by every scenario: the bearer token, id files, and a JSON summary at the end.
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
   wrk.headers["Authorization"] = "Bearer " .. token
end
wrk.headers["Content-Type"] = "application/json"

function read_lines(path)
   local lines = {}
   if path == nil or path == "" then return lines end
   for line in io.lines(path) do lines[#lines + 1] = line end
   return lines
end

incident_ids = read_lines(os.getenv("BENCH_INCIDENT_IDS"))
service_ids = read_lines(os.getenv("BENCH_SERVICE_IDS"))

function pick(list)
   return list[math.random(#list)]
end

local threads = 0
function setup(thread)
   threads = threads + 1
   thread:set("thread_number", threads)
end

function init(args)
   math.randomseed(os.time() * 100 + (thread_number or 0))
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"min": %d, "mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p99": %d, "p999": %d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9)))
end
