-- wrk script for every throughput case of `make bench` and `make bench-peers`: counts the responses
-- whose status is not 2xx (wrk itself counts only statuses >= 400, so a redirect to a sign-in page
-- would pass as a success) and prints one line at the end, read by tests/bench/common.mjs:
--   non-2xx responses: N
-- Each wrk thread has its own Lua state: setup() keeps the threads, done() adds up their counts.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("non2xx")
  end
  io.write(string.format("non-2xx responses: %d\n", total))
end
