-- The enabler side of a channel: what arrives at a callbackURL is queued
-- in the outbox for the channel's client (API.md 2, "Callback"; OMA NC
-- 5: the callbackURL is what subscriptions at the enablers point to).
--
-- Delivery (long poll, WebSocket) reads the outbox in seq order; this
-- module only fills it. ctx.on_notification(channel_id), when the
-- delivery side sets it, is called once the rows are committed, so it can
-- push them to a connected client at once.
local store = require("nc.store")
local tx = require("nc.tx")

local M = {}

-- Queues `items` ({ root, format, body } each, in order, as
-- codec/notification.split gives them) for the channel of `row`, in one
-- transaction: every notification of one POST is stored, or none.
-- Returns the number stored, or nil, err, detail.
function M.enqueue(ctx, row, items)
  local now = ctx.now()
  local n, err, detail = tx.run(ctx.db, function()
    for _, item in ipairs(items) do
      local seq, e, msg = store.enqueue(ctx.db, row.channel_id, item.root,
        item.format, item.body, now)
      if not seq then
        tx.abort(e, msg)
      end
    end
    return #items
  end)
  if not n then
    return nil, err, detail
  end
  if n > 0 and ctx.on_notification then
    ctx.on_notification(row.channel_id)
  end
  return n
end

return M
