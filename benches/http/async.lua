-- wrk script: submit `noop` jobs without waiting for them (202 Accepted); a full queue
-- answers 429, which is a refusal, not a loss.
wrk.method = "POST"
wrk.path = "/v1/jobs"
wrk.headers["Content-Type"] = "application/json"
-- The API key (the server's data dir has the default tenant's in default.key).
local key = os.getenv("TASKHOST_KEY")
if key then wrk.headers["Authorization"] = "Bearer " .. key end
wrk.body = '{"task": "noop", "input": null}'

-- Each wrk thread counts in its own Lua state; `done` adds the threads' counts up.
local threads = {}
function setup(thread) table.insert(threads, thread) end

accepted, refused, other = 0, 0, 0
function response(status, headers, body)
  if status == 202 then
    accepted = accepted + 1
  elseif status == 429 then
    refused = refused + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local a, r, o = 0, 0, 0
  for _, thread in ipairs(threads) do
    a = a + thread:get("accepted")
    r = r + thread:get("refused")
    o = o + thread:get("other")
  end
  io.write(string.format("accepted %d refused %d other %d\n", a, r, o))
end
