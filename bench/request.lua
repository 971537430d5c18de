-- One request shape for wrk, set from the environment by bench/run.py:
--   BENCH_METHOD (GET), BENCH_TOKEN (bearer token) or BENCH_AUTHORIZATION (the whole
--   Authorization header), BENCH_BODY, BENCH_CONTENT_TYPE.
-- BENCH_REFRESH_TOKENS (space-separated) makes a chain of refresh tokens: each request's
--   body is BENCH_BODY with {refresh_token} replaced by a token of the pool, and each answer's
--   rotated refresh_token goes back into it (one live token per connection: the pool holds
--   one per connection, split between wrk's BENCH_WRK_THREADS threads).
-- done() prints one machine-readable line: counts, errors and latency percentiles (µs).

wrk.method = os.getenv("BENCH_METHOD") or "GET"

local token = os.getenv("BENCH_TOKEN")
if token and #token > 0 then
  wrk.headers["Authorization"] = "Bearer " .. token
end
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization and #authorization > 0 then
  wrk.headers["Authorization"] = authorization
end

local body = os.getenv("BENCH_BODY")
if body and #body > 0 then
  wrk.body = body
  wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE")
    or "application/x-www-form-urlencoded"
end

local chain = os.getenv("BENCH_REFRESH_TOKENS")
if chain and #chain > 0 then
  local threads = 0
  setup = function(thread)
    thread:set("thread_index", threads)
    threads = threads + 1
  end

  local pool = {}
  -- Before any connection, wrk calls request() once in its first thread to check the script
  -- (how many requests it returns): that call must not spend a token.
  local checked = true
  init = function(args)
    checked = thread_index ~= 0
    local count = tonumber(os.getenv("BENCH_WRK_THREADS") or "1")
    local i = 0
    for t in chain:gmatch("%S+") do
      if i % count == thread_index then
        pool[#pool + 1] = t
      end
      i = i + 1
    end
  end

  request = function()
    if not checked then
      checked = true
      return wrk.format()
    end
    local t = table.remove(pool) or "spent"  -- none left: a chain broke (an error answer)
    local filled = body:gsub("{refresh_token}", t)
    return wrk.format(nil, nil, nil, filled)
  end

  response = function(status, headers, answer)
    local t = answer:match('"refresh_token":"([^"]+)"')
    if t then
      pool[#pool + 1] = t
    end
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,'
      .. '"write":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,'
      .. '"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
