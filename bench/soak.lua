-- wrk script for the soak (bench/soak.py): a mix of requests over users and sessions listed in a file.
--   wrk -tN -cN ... -s bench/soak.lua URL -- IDS_FILE SEED
-- One connection per wrk thread (-t equal to -c): a thread's requests and answers then alternate, so the
-- answer to an add is known to be that add's (its session is remembered with the ids it got).
-- IDS_FILE: one "user_id session_id message_id,message_id,..." per line (messages seeded in that session).
-- Mix (per 100 requests): 12 adds of a round of 1-2 messages, 3 updates of a message this thread added,
-- 17 message lists, 18 memory queries (hybrid, keyword or vector), 8 message reads by id, 10 user gets,
-- 8 session gets, 4 knowledge lists, 20 health checks; and, once a thread holds more than KEEP rounds of
-- its own, the next request deletes its oldest round instead: adds and deletes balance, so the data set
-- stays the same size however long the soak runs (a soak measures leaks and drift, not growth).
-- Every answer must be 2xx: others are counted by status. done() prints one "SOAK_JSON {...}" line and
-- one "SOAK_LEFT session_id id,id,..." line per round still held (soak.py deletes those between runs).

local WORDS = {"hiking", "lake", "geneva", "weather", "coffee", "espresso", "violin", "orchestra", "sister",
  "birthday", "cake", "chocolate", "train", "tokyo", "kyoto", "temple", "garden", "tomato", "basil", "recipe",
  "marathon", "knee", "doctor", "appointment", "tuesday", "project", "deadline", "manager", "budget", "laptop",
  "battery", "camera", "photo", "mountain", "snow", "ski", "chalet", "wine", "cheese", "fondue", "puppy",
  "retriever", "walk", "park", "river", "bridge", "museum", "painting", "novel", "library", "guitar", "jazz",
  "concert", "ticket", "flight", "hotel", "beach", "sunset", "island", "boat", "fishing", "salmon", "bread",
  "bakery", "morning", "evening", "yoga", "running", "bicycle", "helmet", "rain", "umbrella", "autumn", "leaves"}

local KEEP = 25
local threads = {}
local ids = {}
local counter = 0
statuses = {}  -- globals: done() reads them from every thread
held = {}      -- "session_id id,id" of this thread's own rounds, oldest first
local head, tail = 1, 0  -- held[head..tail]: the rounds still held (indexes, not #: the table has holes)
local pending_add = nil  -- the session of the add in flight (one connection: at most one)

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    local uid, sid, m = line:match("(%S+)%s+(%S+)%s+(%S+)")
    if uid then
      local ms = {}
      for id in m:gmatch("[^,]+") do table.insert(ms, id) end
      table.insert(ids, {uid, sid, ms})
    end
  end
  f:close()
  math.randomseed((tonumber(args[2]) or 1) * 1000 + (tid or 0))
end

local function words(n)
  local t = {}
  for i = 1, n do t[i] = WORDS[math.random(#WORDS)] end
  return table.concat(t, " ")
end

local JSON = {["Content-Type"] = "application/json"}

local function quoted(csv)
  return '"' .. csv:gsub(",", '","') .. '"'
end

function request()
  counter = counter + 1
  pending_add = nil
  if tail - head + 1 > KEEP then
    local sid, m = held[head]:match("(%S+) (%S+)")
    held[head] = nil
    head = head + 1
    return wrk.format("DELETE", "/api/v1/sessions/" .. sid .. "/messages", JSON, '{"message_ids":[' .. quoted(m) .. "]}")
  end
  local k = math.random(#ids)
  local uid, sid = ids[k][1], ids[k][2]
  local r = math.random(100)
  if r <= 12 then
    local n = math.random(2)
    local parts = {}
    for i = 1, n do
      parts[i] = '{"role":"' .. (i == 1 and "user" or "assistant") .. '","content":"soak ' .. counter .. " " .. words(8) .. '"}'
    end
    pending_add = sid
    return wrk.format("POST", "/api/v1/sessions/" .. sid .. "/messages", JSON, '{"messages":[' .. table.concat(parts, ",") .. "]}")
  end
  if r <= 15 and tail >= head then
    local usid, m = held[math.random(head, tail)]:match("(%S+) (%S+)")
    local id = m:match("[^,]+")
    return wrk.format("PUT", "/api/v1/sessions/" .. usid .. "/messages", JSON, '{"message_ids":["' .. id ..
      '"],"new_messages":[{"role":"user","content":"soak updated ' .. counter .. " " .. words(8) .. '"}]}')
  end
  if r <= 32 then
    return wrk.format("GET", "/api/v1/sessions/" .. sid .. "/messages?limit=20")
  elseif r <= 50 then
    local st = ({"null", "null", '"keyword"', '"vector"'})[math.random(4)]
    return wrk.format("POST", "/api/v1/users/" .. uid .. "/query", JSON,
      '{"query":"' .. words(3) .. '","top_k":5,"store_type":' .. st .. "}")
  elseif r <= 58 then
    local ms = ids[k][3]
    return wrk.format("POST", "/api/v1/sessions/" .. sid .. "/messages/read", JSON,
      '{"message_ids":["' .. ms[math.random(#ms)] .. '","' .. ms[math.random(#ms)] .. '"]}')
  elseif r <= 68 then
    return wrk.format("GET", "/api/v1/users/" .. uid)
  elseif r <= 76 then
    return wrk.format("GET", "/api/v1/sessions/" .. sid)
  elseif r <= 80 then
    return wrk.format("GET", "/api/v1/users/" .. uid .. "/knowledge")
  end
  return wrk.format("GET", "/api/v1/health")
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    statuses[status] = (statuses[status] or 0) + 1
  elseif pending_add and status == 201 then
    local m = body:match('"message_ids":%[([^%]]*)%]')
    if m then
      local t = {}
      for id in m:gmatch('"([^"]+)"') do table.insert(t, id) end
      if #t > 0 then
        tail = tail + 1
        held[tail] = pending_add .. " " .. table.concat(t, ",")
      end
    end
  end
  pending_add = nil
end

function done(summary, latency, requests)
  local bad = {}
  local left = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for code, n in pairs(s or {}) do bad[tostring(code)] = (bad[tostring(code)] or 0) + n end
    for _, line in pairs(t:get("held") or {}) do table.insert(left, line) end
  end
  for _, line in ipairs(left) do io.write("SOAK_LEFT " .. line .. "\n") end
  local parts = {}
  for code, n in pairs(bad) do table.insert(parts, '"' .. code .. '":' .. n) end
  local e = summary.errors
  io.write(string.format('SOAK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"non2xx":{%s},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(parts, ","), latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
