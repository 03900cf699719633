-- wrk script of bench/run.sh: requests in absolute form, as a client sends
-- them to a forward proxy ("GET http://127.0.0.1:31080/1k HTTP/1.1" plus a
-- Host field), to the proxy given on wrk's command line.
--
-- Environment:
--   BENCH_URL      absolute http:// URL (for "objects": the prefix, e.g.
--                  http://127.0.0.1:31080/obj/)
--   BENCH_PATTERN  "same" (default): the one URL, request built once;
--                  "unique": BENCH_URL?r=<BENCH_TAG>.<thread>.<n>, so no two
--                  requests of a run share a URL (pass-through misses);
--                  "objects": BENCH_URL<k> for k in 0 .. BENCH_OBJECTS-1, each
--                  of the BENCH_THREADS wrk threads cycling in order over its
--                  own slice, so that no object is asked for twice within
--                  a slice's length (a cache tier smaller than the set sees
--                  no repeat it could still hold)
--   BENCH_TAG      makes "unique" URLs differ between runs and rounds
--   BENCH_OBJECTS, BENCH_THREADS  for "objects"
-- done() prints one line "BENCHRESULT {json}" for the harness.

local url = os.getenv("BENCH_URL") or error("BENCH_URL is not set")
local authority = url:match("^http://([^/]+)")
if not authority then
  error("BENCH_URL must start with http://host[:port]: " .. url)
end
local pattern = os.getenv("BENCH_PATTERN") or "same"
local tag = os.getenv("BENCH_TAG") or "0"
local objects = tonumber(os.getenv("BENCH_OBJECTS") or "0")
local threads = tonumber(os.getenv("BENCH_THREADS") or "1")

wrk.method = "GET"
wrk.path = url
wrk.headers["Host"] = authority

-- setup() runs in the main Lua state, once per wrk thread; each thread
-- then gets its own number in its own state.
local started = 0
function setup(thread)
  started = started + 1
  thread:set("thread_no", started)
end

if pattern == "unique" then
  local sep = url:find("?", 1, true) and "&" or "?"
  local n = 0
  function request()
    n = n + 1
    return wrk.format(nil, url .. sep .. "r=" .. tag .. "." .. thread_no .. "." .. n)
  end
elseif pattern == "objects" then
  if objects < threads then
    error("BENCH_OBJECTS must be at least BENCH_THREADS")
  end
  local first, count, i = nil, nil, 0
  function request()
    if first == nil then
      -- thread t (1-based) owns [first, first + count)
      first = math.floor((thread_no - 1) * objects / threads)
      count = math.floor(thread_no * objects / threads) - first
    end
    local k = first + i
    i = (i + 1) % count
    return wrk.format(nil, url .. k)
  end
elseif pattern ~= "same" then
  error("BENCH_PATTERN must be same, unique or objects, not " .. pattern)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHRESULT {\"requests\": %d, \"duration_us\": %d, \"bytes\": %d, " ..
    "\"socket_errors\": %d, \"timeouts\": %d, \"status_errors\": %d, " ..
    "\"p50_us\": %d, \"p99_us\": %d, \"max_us\": %d, \"mean_us\": %.1f}\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect + e.read + e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.max, latency.mean))
end
