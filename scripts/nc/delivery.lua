-- Notification delivery (issue 4): where the hooks of nc/channels.lua and
-- nc/callbacks.lua and the events of held connections (core/script.h:
-- ws_open, ws_message, gone, written) meet long polling (nc/poll.lua) and
-- WebSockets (nc/websocket.lua).
--
-- It owns the tokens: every answer or message that carries notifications
-- is tagged with one, and when the core reports it written the rows it
-- held leave the outbox (nc/outbox.lua). A channel is either LongPolling
-- or WebSockets, so each event concerns one of the two; routing by token
-- entry and connection id keeps them apart without asking the store.
local channels = require("nc.channels")
local outbox = require("nc.outbox")
local poll = require("nc.poll")
local tokens = require("nc.tokens")
local websocket = require("nc.websocket")

local M = {}

local Delivery = {}
Delivery.__index = Delivery

-- The delivery side of ctx (db, now, log, policy, timer, hub), hooked into
-- it: ctx.on_notification and ctx.on_channel_removed are set here.
function M.new(ctx)
  local t = tokens.new()
  local d = setmetatable({
    ctx = ctx,
    tokens = t,
    poll = poll.new(ctx, t),
    ws = websocket.new(ctx, t),
  }, Delivery)
  ctx.on_notification = function(channel_id)
    d:notify(channel_id)
  end
  ctx.on_channel_removed = function(channel_id, reason)
    d:removed(channel_id, reason)
  end
  return d
end

-- Notifications for `channel_id` were committed (nc/callbacks.lua).
function Delivery:notify(channel_id)
  self.poll:notify(channel_id)
  self.ws:notify(channel_id)
end

-- The channel was deleted or expired (nc/channels.lua; reason "deleted"
-- or "expired"). Its rows went with it (ON DELETE CASCADE).
function Delivery:removed(channel_id, reason)
  self.poll:removed(channel_id, reason)
  self.ws:removed(channel_id, reason)
end

-- A POST on a LongPolling channelURL (nc/api.lua checked the channel).
function Delivery:handle_poll(req, row, format)
  return self.poll:handle(req, row, format)
end

function Delivery:ws_open(key, id)
  self.ws:open(key, id)
end

function Delivery:ws_message(key, id, text)
  self.ws:message(key, id, text)
end

function Delivery:gone(key, id, why, code)
  if not self.ws:gone(key, id, why, code) then
    self.poll:gone(key, id, why, code)
  end
end

-- app.written: settles the rows of written output, then tells its owner
-- (a lost answer's rows are due again; a written message opens the
-- window). A settle that fails leaves the rows to be delivered again.
function Delivery:written(token, ok)
  local entry = self.tokens:take(token)
  if not entry then
    return
  end
  if ok and #entry.seqs > 0 then
    local n, err, detail = outbox.settle(self.ctx, entry.channel_id, entry.seqs)
    if not n then
      self.ctx.log("error", string.format("delivery %s: %s", channels.label(entry.channel_id),
        tostring(detail or err.id)))
    end
  end
  if entry.owner == "poll" then
    self.poll:written(entry, ok)
  else
    self.ws:written(entry, ok)
  end
end

return M
