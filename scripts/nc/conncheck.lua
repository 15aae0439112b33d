-- Connection checking on WebSockets (OMA NC I.3, 5.2.2.11 connCheck,
-- 5.2.2.12 connAck): reading what a client sends, answering its
-- connCheck with a connAck, and the connChecks the server sends itself.
--
-- A client may only send two messages: connCheck (the server MUST answer
-- connAck carrying the channel lifetime, and restart the lifetime) and
-- connAck (the answer to the server's connCheck, which restarts the
-- lifetime with the value that connCheck offered). Anything else ends the
-- connection with 1008 (RFC 6455 7.4.1, policy violation): the spec gives
-- the client no other message, and answering nothing would leave a
-- broken client waiting for notifications it will never understand.
--
-- What this module does to a connection goes through `ws` (nc/websocket.lua):
-- ws:control(conn, slot, text, on_queued) queues a control message ahead
-- of notifications, ws:close(conn, code, reason) ends the connection.
local json = require("codec.json")
local rep = require("codec.representation")
local xml = require("codec.xml")
local channels = require("nc.channels")
local types = require("nc.types")

local M = {}

-- RFC 6455 5.5.1: a close reason fits in 123 bytes; every reason here does.
M.EXPECTED = "expected connCheck or connAck"
M.UNANSWERED = "connCheck unanswered"

local ROOTS = { connCheck = true, connAck = true }
local MEDIA = { json = rep.JSON, xml = rep.XML }

-- The root element name of a client message and its format, or nil.
local function sniff(text)
  local c = text:match("^%s*(.)")
  if c == "{" then
    local doc = json.decode(text)
    if not json.is_object(doc) then
      return nil
    end
    local root = next(doc)
    if root == nil or next(doc, root) ~= nil or not ROOTS[root] then
      return nil
    end
    return root, "json"
  elseif c == "<" then
    local node = xml.parse(text)
    if not node or node.ns ~= types.NAMESPACE or not ROOTS[node.localname] then
      return nil
    end
    return node.localname, "xml"
  end
  return nil
end

-- Reads a client's text message. Returns { root = "connCheck" | "connAck",
-- format = "json" | "xml", value = <normalised value> }, or nil and the
-- reason to close with: M.EXPECTED for anything that is neither, or
-- "invalid <root>: <element>" for one whose content is wrong (a
-- checkInterval that is no integer).
--
-- Elements a client MUST NOT send (newChannelLifetime in connCheck,
-- channelLifetime in connAck: 5.2.2.11, 5.2.2.12) are read and ignored,
-- not refused: the lifetime is the server's to grant, the connAck the
-- client gets says what it is, and closing a connection over a value the
-- server would not use anyway helps nobody.
function M.parse(text)
  local root, format = sniff(text)
  if not root then
    return nil, M.EXPECTED
  end
  local value, err = rep.decode({ headers = { ["content-type"] = MEDIA[format] },
    body = text }, root)
  if not value then
    return nil, "invalid " .. root .. ": " .. tostring(err.variables[1] or root)
  end
  return { root = root, format = format, value = value }
end

-- connAck (5.2.2.12) carrying `lifetime`, in `format`:
--   {"connAck":{"channelLifetime":3600}}
--   <?xml version="1.0" encoding="UTF-8"?>
--   <nc:connAck xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1"
--    xmlns:xsi="..."><channelLifetime>3600</channelLifetime></nc:connAck>
function M.ack(format, lifetime)
  return (rep.encode(format, "connAck", { channelLifetime = math.tointeger(lifetime) }))
end

-- connCheck (5.2.2.11) from the server, in `format`:
--   {"connCheck":{"checkInterval":30,"newChannelLifetime":3600}}
function M.check(format, interval, lifetime)
  return (rep.encode(format, "connCheck", { checkInterval = math.tointeger(interval),
    newChannelLifetime = math.tointeger(lifetime) }))
end

-- The live channel of `conn`, or nil when it is gone (its removal closes
-- the connection) or the store failed (logged).
local function channel(ctx, conn)
  local row, err, detail = channels.find_by_id(ctx, conn.key)
  if row == nil then
    ctx.log("error", string.format("websocket %s: %s", channels.label(conn.key),
      tostring(detail or err.id)))
  end
  return row or nil
end

-- Restarts the lifetime of `conn`'s channel with `lifetime`; returns the
-- one granted, or nil.
local function refresh(ctx, conn, row, lifetime)
  local granted, err, detail = channels.refresh(ctx, row, lifetime)
  if granted == nil then
    ctx.log("error", string.format("websocket %s: %s", channels.label(conn.key),
      tostring(detail or err.id)))
  end
  return granted or nil
end

-- A text message from the client of `conn`, the current connection of
-- its channel. The format it used is the one the server's own connChecks
-- use from now on.
function M.receive(ctx, ws, conn, text)
  local msg, reason = M.parse(text)
  if not msg then
    ctx.log("info", string.format("websocket %s #%s: closing, %s", channels.label(conn.key),
      tostring(conn.id), reason))
    ws:close(conn, 1008, reason)
    return
  end
  conn.format = msg.format
  local row = channel(ctx, conn)
  if not row then
    return
  end
  if msg.root == "connCheck" then
    -- I.3: restart the lifetime and return it in the connAck. The reset
    -- is done on receipt rather than when the connAck is written, so a
    -- client that reads its connAck and then the channelLifetime resource
    -- finds the new value whatever order the core reports writes in.
    local granted = refresh(ctx, conn, row, row.lifetime)
    if granted then
      ws:control(conn, "ack", M.ack(msg.format, granted))
    end
  elseif conn.awaiting then
    -- I.3: a connAck restarts the lifetime with what the connCheck it
    -- answers offered. One without a connCheck before it restarts nothing.
    local offered = conn.awaiting
    conn.awaiting = nil
    refresh(ctx, conn, row, offered)
  end
end

-- One tick of the server's connChecks on `conn`, every `interval` seconds.
-- I.3: a server whose connCheck is still unanswered when the next is due
-- SHOULD consider the connection faulty; it is closed with 1008. A
-- connCheck still waiting for room in the send window does not count as
-- sent: a slow reader is the core's stall timeout to judge.
function M.due(ctx, ws, conn, interval)
  if conn.awaiting then
    ctx.log("info", string.format("websocket %s #%s: closing, %s", channels.label(conn.key),
      tostring(conn.id), M.UNANSWERED))
    ws:close(conn, 1008, M.UNANSWERED)
    return
  end
  local row = channel(ctx, conn)
  if not row then
    return
  end
  local lifetime = math.tointeger(row.lifetime)
  ws:control(conn, "check", M.check(conn.format, interval, lifetime), function()
    conn.awaiting = lifetime
  end)
end

-- Starts the server's connChecks on `conn` when the policy asks for them
-- (ws_conncheck_interval seconds, nc/policy.lua) and there is a timer.
-- One core.timer.every per connection: each connection's checks keep
-- their own phase and exact interval, there is no sweep to walk every
-- connection at once, and a connection's timer goes with it (M.stop).
function M.start(ctx, ws, conn)
  local interval = ctx.policy and ctx.policy.ws_conncheck_interval or 0
  if interval <= 0 or not (ctx.timer and ctx.timer.every) then
    return
  end
  conn.check_timer = ctx.timer.every(math.tointeger(interval * 1000), function()
    M.due(ctx, ws, conn, interval)
  end)
end

-- Stops the connChecks of `conn` (it closed or was replaced).
function M.stop(ctx, conn)
  if conn.check_timer then
    ctx.timer.cancel(conn.check_timer)
    conn.check_timer = nil
  end
  conn.awaiting = nil
end

return M
