-- A scripts directory for test_scripts.py: routes that exercise each part
-- of the `core` module and each way a handler can go wrong, so the C side
-- of the boundary is tested without the real application's logic.
local core = require("core")
local cjson = require("cjson")

local M = {}

local function json(status, value)
  return { status = status, headers = { ["Content-Type"] = "application/json" },
           body = cjson.encode(value) }
end

local routes = {}

routes["/raise"] = function()
  error("deliberate failure in a handler")
end

routes["/bad-status"] = function()
  return { status = 42 }
end

routes["/not-a-table"] = function()
  return "hello"
end

routes["/header-injection"] = function()
  return { status = 200, headers = { ["X-Evil"] = "a\r\nSet-Cookie: stolen=1" } }
end

routes["/echo"] = function(req)
  return json(200, { method = req.method, path = req.path, query = req.query,
                     body = req.body, headers = req.headers })
end

routes["/ids"] = function()
  return json(200, { default = core.random_id(), long = core.random_id(48),
                     other = core.random_id() })
end

routes["/now"] = function()
  return json(200, { now = core.now() })
end

routes["/config"] = function()
  return json(200, { public_url = core.config.public_url,
                     policy_number = core.config.probe_number,
                     policy_text = core.config.probe_text })
end

routes["/db/setup"] = function()
  assert(core.db.exec("CREATE TABLE IF NOT EXISTS probe (k TEXT PRIMARY KEY, v)"))
  return json(200, { ok = true })
end

routes["/db/roundtrip"] = function()
  local changes, rowid = core.db.exec(
    "INSERT OR REPLACE INTO probe (k, v) VALUES (?, ?)", "it's; DROP TABLE probe", 1.5)
  local rows = core.db.query("SELECT k, v FROM probe WHERE k = ?", "it's; DROP TABLE probe")
  return json(200, { changes = changes, rowid = rowid, rows = rows })
end

routes["/db/constraint"] = function()
  core.db.exec("INSERT OR REPLACE INTO probe (k, v) VALUES ('dup', 1)")
  local ok, err = core.db.exec("INSERT INTO probe (k, v) VALUES ('dup', 2)")
  return json(200, { ok = ok == nil and "nil" or ok, err = err })
end

routes["/db/bad-sql"] = function()
  core.db.query("SELEKT nothing")
  return json(200, {})
end

routes["/db/rollback"] = function()
  pcall(core.db.transaction, function()
    core.db.exec("INSERT OR REPLACE INTO probe (k, v) VALUES ('rolled back', 1)")
    error("abort the transaction")
  end)
  local rows = core.db.query("SELECT count(*) AS n FROM probe WHERE k = 'rolled back'")
  local a, b = core.db.transaction(function(x) return x, "second" end, "first")
  return json(200, { count = rows[1].n, results = { a, b } })
end

routes["/db/raise-in-transaction"] = function()
  core.db.transaction(function()
    core.db.exec("INSERT OR REPLACE INTO probe (k, v) VALUES ('never', 1)")
    error("fails inside a transaction")
  end)
end

routes["/db/count-never"] = function()
  local rows = core.db.query("SELECT count(*) AS n FROM probe WHERE k = 'never'")
  return json(200, { count = rows[1].n })
end

-- Timers: state the tests poll for, never a sleep.
local timer_state = { fired = 0, ticks = 0 }

routes["/timer/start"] = function()
  timer_state.fired, timer_state.ticks = 0, 0
  timer_state.once = core.timer.after(20, function()
    timer_state.fired = timer_state.fired + 1
  end)
  timer_state.repeating = core.timer.every(10, function()
    timer_state.ticks = timer_state.ticks + 1
    if timer_state.ticks == 3 then
      timer_state.self_cancel = { core.timer.cancel(timer_state.repeating) }
    end
  end)
  local doomed = core.timer.after(10, function() timer_state.fired = 100 end)
  timer_state.cancelled = { core.timer.cancel(doomed) }
  core.timer.after(0, function() error("deliberate failure in a timer") end)
  return json(200, { once = timer_state.once, repeating = timer_state.repeating })
end

routes["/timer/state"] = function()
  -- Only once it fired: cancelling earlier would stop it.
  local again = timer_state.fired > 0 and { core.timer.cancel(timer_state.once) } or {}
  return json(200, { fired = timer_state.fired, ticks = timer_state.ticks,
                     cancelled = timer_state.cancelled,
                     self_cancel = timer_state.self_cancel,
                     cancel_after_fire = { again[1] == nil and "nil" or again[1], again[2] } })
end

-- core.hub and the events of held connections. Every event is recorded
-- for /hub/events; a WebSocket message "echo:x" is answered with "x".
local events = {}

local function record(...)
  events[#events + 1] = { ... }
end

local function params(req)
  local out = {}
  for k, v in req.query:gmatch("([^&=]+)=([^&]*)") do
    out[k] = v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  end
  return out
end

local function result(ok, err)
  return { ok = ok == true, err = err or cjson.null }
end

routes["/hub/park"] = function(req)
  local p = params(req)
  return { status = 200, body = "timeout " .. p.key,
           park = { key = p.key, timeout_ms = tonumber(p.ms) },
           token = tonumber(p.token) }
end

routes["/hub/answer"] = function(req)
  local p = params(req)
  return json(200, result(core.hub.answer(p.key,
    { status = 200, headers = { ["X-Answer"] = "yes" }, body = "answer " .. p.key },
    tonumber(p.token))))
end

routes["/hub/ws"] = function(req)
  local p = params(req)
  return { upgrade = { key = p.key, protocol = p.protocol } }
end

routes["/hub/send"] = function(req)
  local p = params(req)
  local sent, full, none = 0, 0, 0
  local text = p.text or string.rep("x", tonumber(p.size) or 10)
  for i = 1, tonumber(p.n) or 1 do
    local ok, err = core.hub.send(p.key, text, p.token and (tonumber(p.token) + i - 1) or nil)
    if ok then
      sent = sent + 1
    elseif err == "full" then
      full = full + 1
    else
      none = none + 1
    end
  end
  return json(200, { sent = sent, full = full, none = none })
end

routes["/hub/close"] = function(req)
  local p = params(req)
  return json(200, result(core.hub.close(p.key, tonumber(p.code), p.reason)))
end

routes["/hub/held"] = function(req)
  return json(200, { held = core.hub.held(params(req).key) or "none" })
end

-- res.file: the named file from the web directory, else this 404.
routes["/file"] = function(req)
  return { status = 404, headers = { ["Content-Type"] = "text/plain" },
           body = "fallback\n", file = params(req).name }
end

routes["/hub/events"] = function()
  local out = events
  events = {}
  return json(200, out)
end

-- script_timeout_ms: each way a call from C can run too long. None of
-- these ends without the limit.
local function spin()
  while true do end
end

routes["/spin"] = function()
  spin()
end

-- Catches the timeout and goes round again: only ends if every later
-- instruction raises too.
routes["/spin-pcall"] = function()
  while true do pcall(spin) end
end

-- A coroutine is out of reach of the main thread's hook; this one also
-- catches the timeout and goes round again, and coroutine.resume returns
-- it rather than raising it (the handler would then answer 200).
routes["/spin-coroutine"] = function()
  local ok, err = coroutine.resume(coroutine.create(function()
    while true do pcall(spin) end
  end))
  return json(200, { ok = ok, err = err })
end

routes["/spin-wrap"] = function()
  local ok, err = pcall(coroutine.wrap(spin))
  return json(200, { ok = ok, err = err })
end

-- Writes a row, then spins inside core.db.transaction, or (?by=hand)
-- after a BEGIN of its own that only the core can roll back.
routes["/spin-tx"] = function(req)
  local function write_and_spin()
    core.db.exec("INSERT OR REPLACE INTO probe (k, v) VALUES ('spun', 1)")
    spin()
  end
  if params(req).by == "hand" then
    core.db.exec("BEGIN")
    write_and_spin()
  end
  core.db.transaction(write_and_spin)
end

-- One statement that never ends: the Lua hook cannot see inside it.
routes["/spin-sql"] = function()
  local rows, err = core.db.query([[
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n)
    SELECT count(*) AS c FROM n]])
  return json(200, { rows = rows, err = err })
end

routes["/spin-timer"] = function()
  core.timer.after(0, spin)
  return json(200, {})
end

-- Honest work: ?n= loop iterations or ?ms= of wall-clock time.
routes["/busy"] = function(req)
  local p = params(req)
  local sum = 0
  if p.ms then
    local stop = core.now() + tonumber(p.ms) / 1000
    while core.now() < stop do sum = sum + 1 end
  else
    for i = 1, tonumber(p.n) do sum = sum + i % 7 end
  end
  return json(200, { sum = sum })
end

routes["/db/count"] = function(req)
  local rows = core.db.query("SELECT count(*) AS n FROM probe WHERE k = ?", params(req).k)
  return json(200, { count = rows[1].n })
end

function M.ws_open(key, id)
  record("open", key, id)
end

function M.ws_message(key, id, text)
  record("message", key, id, text)
  local echo = text:match("^echo:(.*)$")
  if echo then
    core.hub.send(key, echo)
  end
end

function M.gone(key, id, why, code)
  record("gone", key, id, why, code)
end

function M.written(token, ok)
  record("written", token, ok)
end

-- Left running on purpose: stopping the server must still end the loop.
core.timer.every(60000, function() end)

function M.handle(req)
  local route = routes[req.path]
  if not route then
    return { status = 404, body = "no route\n" }
  end
  return route(req)
end

return M
