-- wrk script: each request adds one round of one message to the session in MEMFUSE_BENCH_SESSION.
wrk.method = "POST"
wrk.path = "/api/v1/sessions/" .. os.getenv("MEMFUSE_BENCH_SESSION") .. "/messages"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"messages":[{"role":"user","content":"I went hiking near Lake Geneva last weekend and the weather was perfect."}]}'

function response(status, headers, body)
  if status ~= 201 then
    io.stderr:write("unexpected status " .. status .. "\n")
  end
end
