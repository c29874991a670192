-- wrk: POST /v1/events with a new batch of 100 events per request (unique event ids, 20,000
-- users, the shapes of the simulator's impressions and clicks), NDJSON, with the bearer key in
-- FUNNEL_BENCH_KEY.
local key = os.getenv("FUNNEL_BENCH_KEY")
local counter = 0
local thread_id = 0
local seed_threads = 0

function setup(thread)
  seed_threads = seed_threads + 1
  thread:set("thread_id", seed_threads)
end

function init(args)
  math.randomseed(1000 + thread_id)
end

function request()
  counter = counter + 1
  local parts = {}
  for k = 1, 100 do
    local user = math.random(0, 19999)
    local id = string.format("t%d-%d-%d", thread_id, counter, k)
    if k % 10 == 0 then
      parts[k] = string.format('{"type":"click","event_id":"%s","ts":1772451236%03d,"user_id":"u%d","impression_id":"t%d-%d-%d"}',
        id, k, user, thread_id, counter, k - 1)
    else
      parts[k] = string.format('{"type":"impression","event_id":"%s","ts":"2026-03-02T11:33:56.%03dZ","user_id":"u%d","item_id":"i%d","position":%d,"surface":"home","request_id":"r%d","price":18.22,"experiment":"recs-v2","variant":"control","viewable_fraction":0.99,"viewable_ms":7188}',
        id, k, user, math.random(1, 5000), k % 8 + 1, counter)
    end
  end
  local body = table.concat(parts, "\n")
  return wrk.format("POST", "/v1/events", {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/x-ndjson"}, body)
end

local failures = 0
function response(status, headers, body)
  if status ~= 200 then failures = failures + 1 end
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx_or_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
