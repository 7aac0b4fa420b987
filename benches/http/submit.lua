-- wrk script: submit a job and wait for its result in the same request. The job is
-- `uppercase` unless JOB_TASK (and JOB_INPUT, its input as JSON) say otherwise; JOB_FUEL
-- gives it a fuel budget.
local task = os.getenv("JOB_TASK") or "uppercase"
local input = os.getenv("JOB_INPUT") or '{"text": "the quick brown fox jumps over the lazy dog"}'
local fuel = os.getenv("JOB_FUEL")
local budget = (fuel and fuel ~= "") and string.format(', "fuel": %s', fuel) or ""
wrk.method = "POST"
wrk.path = "/v1/jobs"
wrk.headers["Content-Type"] = "application/json"
-- The API key (the server's data dir has the default tenant's in default.key).
local key = os.getenv("TASKHOST_KEY")
if key then wrk.headers["Authorization"] = "Bearer " .. key end
wrk.body = string.format('{"task": "%s", "input": %s%s, "wait_ms": 10000}', task, input, budget)

-- Answers that are not a succeeded job must be none. Each wrk thread counts in its own Lua
-- state; `done` adds the threads' counts up.
local threads = {}
function setup(thread) table.insert(threads, thread) end

failures = 0
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"status":"succeeded"', 1, true) then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("failures") end
  io.write(string.format("non-200 or failed jobs: %d\n", total))
end
