-- wrk script for the memory phase of `make bench`: the requests rotate through the app's paths
-- (signed-in home, /items/42 with the session, /items/42 with the bearer token, signed-out home) so
-- every hot path runs in the same processes. BENCH_COOKIE is the whole Cookie header value,
-- BENCH_BEARER the access token. (wrk stops by time only: the runner repeats short runs and adds
-- up the request counts wrk reports.)
local cookie = os.getenv("BENCH_COOKIE") or ""
local bearer = os.getenv("BENCH_BEARER") or ""
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
