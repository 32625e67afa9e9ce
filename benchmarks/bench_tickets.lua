-- wrk's side of `benchmarks/bench_tickets.py --load wrk`: POST /api/tickets, every request with its own
-- body and Idempotency-Key, one connection per wrk thread. Each thread counts what it sent and what came
-- back (201 or anything else); done() prints one BENCH line the benchmark reads.
-- Arguments (after wrk's --): the bearer token.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

local words = {"停水", "停电", "燃气", "暖气", "噪音", "路灯", "垃圾", "物业", "占道", "井盖", "社保", "公交",
               "学校", "医保", "违建", "拖欠工资", "油烟", "漏水", "电梯", "绿化"}

function init(args)
  token = args[1]
  sent, created, other = 0, 0, 0
  math.randomseed(id)
end

function request()
  sent = sent + 1
  local body = string.format('{"content": "%s 第%d号楼 %s", "phone": "138%02d%06d", "caller_name": "市民%d-%d"}',
                             words[math.random(#words)], sent, words[math.random(#words)], id, sent, id, sent)
  return wrk.format("POST", "/api/tickets", {["Content-Type"] = "application/json",
                                             ["Authorization"] = "Bearer " .. token,
                                             ["Idempotency-Key"] = string.format("wrk-%d-%d", id, sent)}, body)
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  else
    other = other + 1
    if other <= 3 then io.stderr:write(string.format("status %d: %s\n", status, body:sub(1, 200))) end
  end
end

function done(summary, latency, requests)
  local s, c, o = 0, 0, 0
  for _, thread in ipairs(threads) do
    s = s + thread:get("sent")
    c = c + thread:get("created")
    o = o + thread:get("other")
  end
  local e = summary.errors
  io.write(string.format("BENCH sent=%d created=%d other=%d duration_us=%d connect=%d read=%d write=%d " ..
                         "timeout=%d p50_us=%d p99_us=%d\n", s, c, o, summary.duration, e.connect, e.read,
                         e.write, e.timeout, latency:percentile(50), latency:percentile(99)))
end
