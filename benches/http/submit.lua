-- wrk script: submit an `uppercase` job and wait for its result in the same request.
wrk.method = "POST"
wrk.path = "/v1/jobs"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"task": "uppercase", "input": {"text": "the quick brown fox jumps over the lazy dog"}, "wait_ms": 10000}'

-- Count answers that are not 200 (a job that did not finish, or an error): they must be zero.
local failures = 0
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"status":"succeeded"', 1, true) then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  io.write(string.format("non-200 or failed jobs: %d\n", failures))
end
