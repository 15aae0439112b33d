-- A stand-in for core.hub (core/script.h) that records what the scripts
-- ask of it and plays the core's part when a spec says so.
--
--   local fake_hub = require("support.fake_hub")
--   local hub = fake_hub.new()
--   ctx.hub = hub                       -- or core.hub for app specs
--
-- What the scripts call: held, answer, send, close, as the contract says.
-- What a spec calls, standing in for the core and the network:
--   hub.apply(key, res)    act on a handler's res.park / res.upgrade as the
--                          core would; returns the new connection id
--   hub.timeout(key)       the parked request's timeout passes: its
--                          timeout response is sent, gone "timeout" follows
--   hub.drop(key, why, code) the connection under key goes ("peer", ...)
--   hub.limit(key, n)      the socket under key takes n more messages before
--                          send says "full" (nil: unlimited, the default)
--   hub.drain(key, n)      the kernel takes the oldest n unwritten outputs
--                          of key (all when n is nil): written(token, true)
--                          for each, and n more messages fit again
--   hub.respond(key, res)  the core sent a plain response from app.handle
--   hub.answered(ok)       answers and responses with a token were written
--                          (ok, default true) or lost (false)
--   hub.deliver(app)       hands every queued event to app.written /
--                          app.gone (functions, as app.lua exports them),
--                          in order; returns how many
-- Records: hub.answers, hub.sent, hub.closed (each in order, with key),
-- hub.responses (every response the client of a key got: answers,
-- timeouts), hub.events (queued, not yet delivered).
local M = {}

function M.new()
  local hub = {
    holders = {},  -- key -> { kind, id, res, room, unwritten = { token... } }
    answers = {},
    sent = {},
    closed = {},
    responses = {},
    events = {},
    next_id = 0,
    calls = 0,     -- hub calls made by the scripts
    pending_answers = {}, -- responses with a token, not yet reported written
  }

  local function event(...)
    hub.events[#hub.events + 1] = table.pack(...)
  end

  -- Ends the holder of key: its unwritten output is reported lost and
  -- gone follows (unless `quiet`, for core.hub.answer).
  local function release(key, why, code, quiet)
    local h = hub.holders[key]
    if not h then
      return
    end
    hub.holders[key] = nil
    for _, token in ipairs(h.unwritten) do
      event("written", token, false)
    end
    if not quiet then
      event("gone", key, h.id, why, code)
    end
  end

  local function track(h, token)
    if token ~= nil then
      assert(math.type(token) == "integer" and token > 0, "bad token " .. tostring(token))
      h.unwritten[#h.unwritten + 1] = token
    end
  end

  -- ---- core.hub ---------------------------------------------------------

  function hub.held(key)
    assert(type(key) == "string", "key must be a string")
    hub.calls = hub.calls + 1
    local h = hub.holders[key]
    return h and h.kind or nil
  end

  function hub.answer(key, res, token)
    hub.calls = hub.calls + 1
    assert(type(res) == "table" and res.status, "answer needs a response")
    assert(res.park == nil and res.upgrade == nil, "an answer cannot park or upgrade")
    local h = hub.holders[key]
    if not h or h.kind ~= "parked" then
      return nil, "none"
    end
    hub.answers[#hub.answers + 1] = { key = key, res = res, token = token, id = h.id }
    hub.responses[#hub.responses + 1] = { key = key, res = res, id = h.id }
    -- The request is no longer held; its answer's written() comes with
    -- hub.deliver (or hub.answered(false)).
    hub.holders[key] = nil
    if token ~= nil then
      hub.pending_answers[#hub.pending_answers + 1] = { key = key, token = token }
    end
    return true
  end

  function hub.send(key, text, token)
    hub.calls = hub.calls + 1
    assert(type(text) == "string", "send needs text")
    local h = hub.holders[key]
    if not h or h.kind ~= "websocket" then
      return nil, "none"
    end
    if h.room and h.room <= 0 then
      return nil, "full"
    end
    if h.room then
      h.room = h.room - 1
    end
    track(h, token)
    hub.sent[#hub.sent + 1] = { key = key, text = text, token = token, id = h.id }
    return true
  end

  function hub.close(key, code, reason)
    hub.calls = hub.calls + 1
    local h = hub.holders[key]
    if not h then
      return nil, "none"
    end
    hub.closed[#hub.closed + 1] = { key = key, id = h.id, code = code or 1000, reason = reason }
    release(key, "closed", h.kind == "websocket" and (code or 1000) or 0)
    return true
  end

  -- ---- the core's part, driven by specs ---------------------------------

  function hub.apply(key, res)
    if res.park then
      assert(res.park.key == key, "parked under another key")
      assert(math.type(res.park.timeout_ms) == "integer" and res.park.timeout_ms > 0,
        "bad timeout_ms")
      local old = hub.holders[key]
      if old then
        -- One parked request per key: the older ends with its own
        -- timeout response.
        hub.responses[#hub.responses + 1] = { key = key, res = old.res, id = old.id }
        release(key, "replaced", 0)
      end
      hub.next_id = hub.next_id + 1
      hub.holders[key] = { kind = "parked", id = hub.next_id, res = res, unwritten = {} }
      return hub.next_id
    elseif res.upgrade then
      assert(res.upgrade.key == key, "upgraded under another key")
      local old = hub.holders[key]
      if old then
        hub.closed[#hub.closed + 1] = { key = key, id = old.id, code = 1000, reason = "replaced" }
        release(key, "replaced", old.kind == "websocket" and 1000 or 0)
      end
      hub.next_id = hub.next_id + 1
      hub.holders[key] = { kind = "websocket", id = hub.next_id, unwritten = {},
        protocol = res.upgrade.protocol }
      return hub.next_id
    end
    error("neither park nor upgrade")
  end

  function hub.timeout(key)
    local h = assert(hub.holders[key], "nothing held under key")
    assert(h.kind == "parked", "not parked")
    hub.responses[#hub.responses + 1] = { key = key, res = h.res, id = h.id }
    release(key, "timeout", 0)
  end

  function hub.drop(key, why, code)
    local h = assert(hub.holders[key], "nothing held under key")
    release(key, why or "peer", code or (h.kind == "websocket" and 1006 or 0))
  end

  function hub.limit(key, n)
    local h = assert(hub.holders[key], "nothing held under key")
    h.room = n
  end

  function hub.drain(key, n)
    local h = assert(hub.holders[key], "nothing held under key")
    n = n or #h.unwritten
    for _ = 1, math.min(n, #h.unwritten) do
      event("written", table.remove(h.unwritten, 1), true)
      if h.room then
        h.room = h.room + 1
      end
    end
  end

  -- The core sent `res` as app.handle returned it (no park, no upgrade):
  -- a response with a token is reported like an answer.
  function hub.respond(key, res)
    assert(res.park == nil and res.upgrade == nil, "not a plain response")
    hub.responses[#hub.responses + 1] = { key = key, res = res }
    if res.token ~= nil then
      hub.pending_answers[#hub.pending_answers + 1] = { key = key, token = res.token }
    end
  end

  -- The answers and responses with a token so far were written (ok true,
  -- the default) or their client went first (ok false): queues written().
  function hub.answered(ok)
    for _, a in ipairs(hub.pending_answers) do
      event("written", a.token, ok ~= false)
    end
    hub.pending_answers = {}
  end

  function hub.deliver(app)
    local n = 0
    while #hub.events > 0 do
      local e = table.remove(hub.events, 1)
      n = n + 1
      if e[1] == "written" then
        app.written(e[2], e[3])
      else
        app.gone(e[2], e[3], e[4], e[5])
      end
    end
    return n
  end

  -- The texts sent to key, in order (from index `from`, default 1).
  function hub.texts(key, from)
    local out = {}
    for _, s in ipairs(hub.sent) do
      if s.key == key then
        out[#out + 1] = s.text
      end
    end
    return { table.unpack(out, from or 1) }
  end

  return hub
end

return M
