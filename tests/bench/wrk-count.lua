-- wrk script for the memory phase of `make bench`: each thread stops after BENCH_PER_THREAD
-- responses, and the requests rotate through the app's paths (signed-in home, /items/42 with the
-- session, /items/42 with the bearer token, signed-out home) so every hot path is exercised.
-- BENCH_COOKIE is the whole Cookie header value, BENCH_BEARER the access token.
local limit = tonumber(os.getenv("BENCH_PER_THREAD") or "1000")
local cookie = os.getenv("BENCH_COOKIE") or ""
local bearer = os.getenv("BENCH_BEARER") or ""
local count = 0
local turn = 0
local requests = {}

function init(args)
  requests = {
    wrk.format("GET", "/", { ["Cookie"] = cookie }),
    wrk.format("GET", "/items/42", { ["Cookie"] = cookie }),
    wrk.format("GET", "/items/42", { ["Authorization"] = "Bearer " .. bearer }),
    wrk.format("GET", "/", {}),
  }
end

function request()
  turn = turn % #requests + 1
  return requests[turn]
end

function response(status, headers, body)
  count = count + 1
  if count >= limit then wrk.thread:stop() end
end
