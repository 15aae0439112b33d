-- The enabler side of a channel: what arrives at a callbackURL is queued
-- in the outbox for the channel's client (API.md 2, "Callback"; OMA NC
-- 5: the callbackURL is what subscriptions at the enablers point to).
--
-- Delivery (long poll, WebSocket) reads the outbox in seq order; this
-- module only fills it, up to policy max_queued_notifications rows per
-- channel. ctx.on_notification(channel_id), when the delivery side sets
-- it, is called once the rows are committed, so it can push them to a
-- connected client at once.
local errors = require("codec.errors")
local channels = require("nc.channels")
local store = require("nc.store")
local tx = require("nc.tx")

local M = {}

-- Seconds the 503 for a full channel tells the enabler to wait before it
-- posts again (RFC 7231 7.1.3 Retry-After). Only the channel's client can
-- make room, by reading; a minute gives it time to come back and drain a
-- page or more, where an enabler retrying at once would only be refused
-- again.
M.RETRY_AFTER = 60

-- Queues `items` ({ root, format, body } each, in order, as
-- codec/notification.split gives them) for the channel of `row`, in one
-- transaction: every notification of one POST is stored, or none.
-- Returns the number stored; false and SVC2001 when they would take the
-- channel's queue past policy max_queued_notifications (nothing stored,
-- one warn line logged; the caller answers 503 with Retry-After
-- M.RETRY_AFTER); or nil, err, detail when the store failed.
function M.enqueue(ctx, row, items)
  local now = ctx.now()
  local limit = ctx.policy.max_queued_notifications
  local n, queued, detail = tx.run(ctx.db, function()
    -- Counted in the transaction of the inserts, so that what is checked
    -- is what they are added to.
    local count, e, msg = store.count_queued(ctx.db, row.channel_id, limit)
    if not count then
      tx.abort(e, msg)
    end
    if count + #items > limit then
      return false, count
    end
    for _, item in ipairs(items) do
      local seq
      seq, e, msg = store.enqueue(ctx.db, row.channel_id, item.root,
        item.format, item.body, now)
      if not seq then
        tx.abort(e, msg)
      end
    end
    return #items
  end)
  if n == nil then
    return nil, queued, detail
  end
  if not n then
    -- The count stops at the limit, so a channel a fan-out took past it
    -- shows as "at least" the limit.
    ctx.log("warn", string.format(
      "callback %s: queue full, refused %d notification(s): %s%d queued (limit %d)",
      channels.label(row.channel_id), #items, queued >= limit and "at least " or "",
      queued, limit))
    return false, errors.new("SVC2001")
  end
  if n > 0 and ctx.on_notification then
    ctx.on_notification(row.channel_id)
  end
  return n
end

return M
