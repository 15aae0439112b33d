-- Notification delivery over WebSockets (OMA NC Appendix I; API.md 2,
-- "WebSockets", "Slow readers", "Nothing lost").
--
-- The handshake itself is the core's (res.upgrade, core/script.h); this
-- module checks what only the scripts know (the subprotocol of I.2), then
-- feeds each connection the channel's outbox:
--
--   * every message is a text frame holding a notificationList of at most
--     maxNotifications notifications, all stored in the same format and
--     sent in it (I.1 allows a single notification as the root element;
--     we always use the list, as API.md 2 says);
--   * the outbox is read in seq order from a per-connection cursor, so a
--     connection never gets notifications out of order; a new connection
--     starts again from the oldest notification still stored, so rows in
--     flight on a replaced connection are sent again (at least once);
--   * a notification leaves the outbox when the message holding it was
--     written (app.written(token, true));
--   * the send window is the core's: messages are sent while
--     core.hub.send accepts them; on "full" sending stops and resumes on
--     the next written(true) of that connection, so a client that stops
--     reading costs the window and no more, and catches up in order when
--     it drains;
--   * one pump sends at most PUMP_MESSAGES messages: a channel with
--     thousands of rows waiting (and a client reading as fast as we
--     write) must not hold the event loop, so the rest is sent after the
--     other channels waiting for delivery had their turn (the `defer`
--     function nc/delivery.lua gives, which puts the channel back in its
--     wake-up queue).
--
-- Control messages (connAck, connCheck: nc/conncheck.lua) go ahead of
-- notifications, at most one of each waiting: a client that floods
-- connChecks without reading gets one connAck, not a queue of them.
local errors = require("codec.errors")
local channels = require("nc.channels")
local conncheck = require("nc.conncheck")
local outbox = require("nc.outbox")

local M = {}

-- OMA NC I.2: the subprotocol a client MUST offer and the server echoes.
M.PROTOCOL = "notificationchannel-netapi-rest.openmobilealliance.org"

-- After a storage failure, or a full window with none of our output in
-- it (so no written() will come to reopen it), try to send again in this
-- long rather than wait for the next notification.
M.RETRY_MS = 1000

-- Messages one pump sends at most before it defers the rest (see above).
-- Each holds up to maxNotifications notifications; 8 of them are a few
-- hundred microseconds of work.
M.PUMP_MESSAGES = 8

-- Control slots, in the order they are sent.
local CONTROL = { "ack", "check" }

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- True when the comma-separated header value `value` lists `token`
-- exactly (RFC 7230 7: #rule lists; repeated headers arrive joined with
-- ", "). `fold`: compare case-insensitively (Upgrade, RFC 7230 6.7);
-- subprotocol tokens compare exactly (RFC 6455 4.1).
local function lists(value, token, fold)
  if type(value) ~= "string" then
    return false
  end
  for item in value:gmatch("[^,]+") do
    item = trim(item)
    if item == token or (fold and item:lower() == token:lower()) then
      return true
    end
  end
  return false
end

-- Checks what the scripts own of a WebSocket handshake on a channelURL.
-- Returns the subprotocol to echo, or nil, the error to answer and extra
-- headers:
--   426 SVC0002 "Upgrade" with "Upgrade: websocket" for a request that
--       does not ask to upgrade at all (a plain GET, or HEAD): RFC 7231
--       6.5.15 names the protocol the resource needs; the core answers
--       400 for a handshake it finds broken in other ways (RFC 6455 4.2.1);
--   400 SVC0002 "Sec-WebSocket-Protocol" when the subprotocol of I.2 is
--       not offered (I.1: the client MUST use it), so nothing is upgraded.
function M.handshake(req)
  local headers = req.headers or {}
  if req.method ~= "GET" or not lists(headers.upgrade, "websocket", true) then
    local err = errors.new("SVC0002", "Upgrade")
    err.status = 426
    return nil, err, { Upgrade = "websocket" }
  end
  if not lists(headers["sec-websocket-protocol"], M.PROTOCOL, false) then
    return nil, errors.new("SVC0002", "Sec-WebSocket-Protocol")
  end
  return M.PROTOCOL
end

-- The instruction app.handle returns to upgrade the request to a
-- WebSocket held under the channel id (status, headers and body are
-- unused by the core; they make it a well-formed response all the same).
function M.upgrade(channel_id, protocol)
  return { status = 101, headers = {}, body = "",
    upgrade = { key = channel_id, protocol = protocol } }
end

local WS = {}
WS.__index = WS

-- The WebSockets of ctx (db, now, log, policy, timer, and hub: core.hub;
-- without one nothing is ever sent), issuing tokens from `tokens`.
-- defer(channel_id), optional, is to call WS:notify(channel_id) again
-- later, once other work had its turn; without it a timer of 0 ms does
-- that (and without a timer either, a pump sends all it can).
function M.new(ctx, tokens, defer)
  return setmetatable({
    ctx = ctx,
    tokens = tokens,
    defer = defer,
    -- channel id -> the connection that serves it now.
    current = {},
    -- connection id -> connection, from ws_open to gone, replaced or not.
    by_id = {},
  }, WS)
end

local function log(ctx, fmt, ...)
  ctx.log("info", "websocket " .. string.format(fmt, ...))
end

-- The connection stops being the one its channel is served on: no more
-- sends, no more connChecks. `reason` is what its close is logged with.
function WS:retire(conn, reason)
  if self.current[conn.key] == conn then
    self.current[conn.key] = nil
  end
  conn.reason = conn.reason or reason
  conncheck.stop(self.ctx, conn)
  if conn.retry then
    self.ctx.timer.cancel(conn.retry)
    conn.retry = nil
  end
end

-- Closes the current connection `conn` with `code` and `reason`
-- (app.gone follows with "closed").
function WS:close(conn, code, reason)
  local current = self.current[conn.key] == conn
  self:retire(conn, reason)
  if current and self.ctx.hub then
    self.ctx.hub.close(conn.key, code, reason)
  end
end

-- Calls pump(conn) again in RETRY_MS (one retry pending at most).
function WS:retry(conn)
  local timer = self.ctx.timer
  if not timer or conn.retry then
    return
  end
  conn.retry = timer.after(M.RETRY_MS, function()
    conn.retry = nil
    conn.blocked = false
    self:pump(conn)
  end)
end

-- Sends `text` on `conn` under a new token carrying `seqs`. Returns true
-- when the core queued it; false when the window is full (conn is then
-- blocked until a written(true)) or nothing holds the key any more.
function WS:send(conn, text, seqs)
  local hub = self.ctx.hub
  if not hub then
    return false
  end
  local token = self.tokens:issue({ owner = "ws", channel_id = conn.key, conn = conn.id,
    seqs = seqs })
  local ok, err = hub.send(conn.key, text, token)
  if ok then
    conn.inflight = conn.inflight + 1
    return true
  end
  self.tokens:take(token)
  if err == "full" then
    conn.blocked = true
    if conn.inflight == 0 then
      -- The window is full of output that is not ours (the core's pongs,
      -- say): no written() of ours will say when it drains.
      self:retry(conn)
    end
  end
  return false
end

-- Asks for `conn` to be pumped again later (see M.PUMP_MESSAGES). Returns
-- false when there is no way to, and the pump should go on now.
function WS:later(conn)
  if self.defer then
    self.defer(conn.key)
    return true
  end
  local timer = self.ctx.timer
  if not timer then
    return false
  end
  timer.after(0, function()
    self:notify(conn.key)
  end)
  return true
end

-- Sends what `conn` has waiting, control messages first, until there is
-- nothing left, the window is full or PUMP_MESSAGES were sent.
--
-- conn.drained says the last read of the outbox found everything there
-- was and all of it was sent: a pump for room in the window (written)
-- then has nothing to read, and skips the query. Every new row comes
-- with a WS:notify, which clears it.
function WS:pump(conn)
  local ctx = self.ctx
  if conn.blocked or self.current[conn.key] ~= conn then
    return
  end
  for _, slot in ipairs(CONTROL) do
    local c = conn.control[slot]
    if c then
      if not self:send(conn, c.text, {}) then
        return
      end
      conn.control[slot] = nil
      if c.queued then
        c.queued()
      end
    end
  end
  conn.drained = false
  local sent = 0
  while true do
    if sent >= M.PUMP_MESSAGES and self:later(conn) then
      return
    end
    local rows, err, detail = outbox.pending(ctx, conn.key, { after = conn.cursor,
      limit = conn.max })
    if not rows then
      ctx.log("error", string.format("websocket %s: %s", channels.label(conn.key),
        tostring(detail or err.id)))
      self:retry(conn)
      return
    end
    if #rows == 0 then
      conn.drained = true
      return
    end
    local run = outbox.same_format(rows)
    local text = outbox.encode(run[1].format, run)
    if not self:send(conn, text, outbox.seqs(run)) then
      return
    end
    conn.cursor = run[#run].seq
    sent = sent + 1
    if #run == #rows and #rows < conn.max then
      -- Fewer rows than asked for, all sent: that was everything.
      conn.drained = true
      return
    end
  end
end

-- Queues the control message `text` in `slot` ("ack" or "check") of the
-- current connection `conn`, replacing one still waiting there, and sends
-- it when the window allows; queued() is called once it is handed to the
-- core.
function WS:control(conn, slot, text, queued)
  if self.current[conn.key] ~= conn then
    return
  end
  conn.control[slot] = { text = text, queued = queued }
  self:pump(conn)
end

-- app.ws_open: connection `id` now serves channel `key`. A connection it
-- replaces gets nothing more (I.3; the core closes it with 1000).
function WS:open(key, id)
  local ctx = self.ctx
  local old = self.current[key]
  local conn = { key = key, id = id, format = "json", cursor = 0, control = {},
    inflight = 0, max = ctx.policy.max_notifications_default }
  self.by_id[id] = conn
  if old then
    self:retire(old, "replaced")
    log(ctx, "%s #%s: open, replacing #%s", channels.label(key), tostring(id), tostring(old.id))
  else
    log(ctx, "%s #%s: open", channels.label(key), tostring(id))
  end
  self.current[key] = conn
  local row, err, detail = channels.find_by_id(ctx, key)
  if row == nil then
    ctx.log("error", string.format("websocket %s: %s", channels.label(key),
      tostring(detail or err.id)))
    self:close(conn, 1011, "server error")
    return
  end
  if not row then
    -- Deleted between the handshake and now; had it expired, its removal
    -- (by the lookup above) closed the connection already.
    self:close(conn, 1000, "channel deleted")
    return
  end
  conn.max = math.min(row.max_notifications, ctx.policy.max_notifications_max)
  conncheck.start(ctx, self, conn)
  self:pump(conn)
end

-- app.ws_message: text from connection `id` of channel `key`. Messages
-- from a connection that was replaced are ignored (I.3: the client has
-- no intention of using it any longer).
function WS:message(key, id, text)
  local conn = self.current[key]
  if not conn or conn.id ~= id then
    self.ctx.log("debug", string.format("websocket %s #%s: message from a replaced connection ignored",
      channels.label(key), tostring(id)))
    return
  end
  conncheck.receive(self.ctx, self, conn, text)
end

-- app.gone: returns true when `id` was one of our WebSockets.
function WS:gone(key, id, why, code)
  local conn = self.by_id[id]
  if not conn then
    return false
  end
  self.by_id[id] = nil
  self:retire(conn, why)
  log(self.ctx, "%s #%s: closed, %s (%s)", channels.label(key), tostring(id),
    tostring(conn.reason), tostring(code))
  return true
end

-- Notifications were stored for `channel_id`.
function WS:notify(channel_id)
  local conn = self.current[channel_id]
  if conn then
    conn.drained = false
    self:pump(conn)
  end
end

-- The channel was deleted or expired: API.md 2, its WebSocket is closed
-- (1000, "channel deleted" / "channel expired").
function WS:removed(channel_id, reason)
  local conn = self.current[channel_id]
  if conn then
    self:close(conn, 1000, "channel " .. (reason or channels.DELETED))
  end
end

-- app.written for a message of ours: room in the window again, if its
-- connection is still the current one.
function WS:written(entry, ok)
  local conn = self.current[entry.channel_id]
  if conn and conn.id == entry.conn then
    conn.inflight = conn.inflight - 1
    if ok then
      conn.blocked = false
      if not conn.drained or next(conn.control) then
        self:pump(conn)
      end
    end
  end
end

return M
