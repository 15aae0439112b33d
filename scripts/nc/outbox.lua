-- The outbox as delivery reads it (API.md 2, "Nothing lost"): the
-- notifications queued for a channel, taken oldest first, put into
-- notificationLists (OMA NC 5.2.2.3), and removed only once the core says
-- the output holding them was written. A notification whose output was
-- lost stays and goes out again: delivery is at least once, never at most.
--
-- nc/callbacks.lua fills the outbox; nc/poll.lua and nc/websocket.lua
-- decide when to read it. Rows are { seq, root, format, body, created_at }
-- as nc/store.lua gives them (a movie fan-out's row with its body put
-- back together from its template, so nothing here tells them apart).
local notification = require("codec.notification")
local rep = require("codec.representation")
local store = require("nc.store")

local M = {}

local function count(set)
  local n = 0
  for _ in pairs(set or {}) do
    n = n + 1
  end
  return n
end

-- Up to opts.limit rows of `channel_id`, oldest first, after seq
-- opts.after (default 0: from the oldest) and leaving out the seqs in the
-- set opts.skip (those already in flight). nil, err, detail when the
-- store fails.
function M.pending(ctx, channel_id, opts)
  local limit, skip = opts.limit, opts.skip
  -- Skipped rows are among the first ones read at most, so reading that
  -- many more still fills the limit.
  local rows, err, detail = store.queued_after(ctx.db, channel_id, opts.after or 0,
    limit + count(skip))
  if not rows then
    return nil, err, detail
  end
  local out = {}
  for _, row in ipairs(rows) do
    if #out == limit then
      break
    end
    if not (skip and skip[row.seq]) then
      out[#out + 1] = row
    end
  end
  return out
end

-- The leading rows of `rows` stored in the same format as the first. A
-- WebSocket message carries notifications in the format their enabler
-- used (API.md 2), so one message holds one format.
function M.same_format(rows)
  local out = {}
  for _, row in ipairs(rows) do
    if row.format ~= rows[1].format then
      break
    end
    out[#out + 1] = row
  end
  return out
end

-- The seqs of `rows`, in order.
function M.seqs(rows)
  local out = {}
  for i, row in ipairs(rows) do
    out[i] = row.seq
  end
  return out
end

local CONVERT = { json = notification.to_json, xml = notification.to_xml }

-- The notificationList items of `rows` in `format` (codec/notification
-- converts the ones stored in the other format), and the rows that could
-- not be converted. Those are notifications the generic OMA JSON <-> XML
-- mapping cannot carry (none that codec/notification accepts today); the
-- caller drops them rather than let one row block its channel forever.
function M.items(rows, format)
  local items, bad = {}, {}
  local convert = CONVERT[format]
  for _, row in ipairs(rows) do
    local item = { root = row.root, format = row.format, body = row.body }
    if row.format ~= format then
      local ok, body = pcall(convert, item)
      if ok then
        item = { root = row.root, format = format, body = body }
      else
        item = nil
        bad[#bad + 1] = row
      end
    end
    items[#items + 1] = item
  end
  return items, bad
end

-- The notificationList value (5.2.2.3, for codec/representation) of
-- `rows` in `format` ("json" or "xml"), the rows it holds, and the rows
-- left out as unconvertible (see M.items). Encoded, JSON is always an
-- array (API.md 2, D.13): {"notificationList":[{"<root>":{...}},...]},
-- {"notificationList":[]} when empty; XML an nc:notificationList element
-- with each notification a child (6.3.5.1, 6.3.5.3, I.4.1).
function M.list(format, rows)
  local items, bad = M.items(rows, format)
  local held = rows
  if #bad > 0 then
    local dropped = {}
    for _, row in ipairs(bad) do
      dropped[row.seq] = true
    end
    held = {}
    for _, row in ipairs(rows) do
      if not dropped[row.seq] then
        held[#held + 1] = row
      end
    end
  end
  return { notifications = items }, held, bad
end

-- The text of a notificationList of `rows` in `format`, and its
-- Content-Type; for rows that all convert (a WebSocket message, whose rows
-- share the format it is written in).
function M.encode(format, rows)
  local value = M.list(format, rows)
  return rep.encode(format, "notificationList", value)
end

-- Removes delivered (or dropped) rows `seqs` of `channel_id`. Returns the
-- number removed, or nil, err, detail.
function M.settle(ctx, channel_id, seqs)
  return store.dequeue(ctx.db, channel_id, seqs)
end

-- As settle, for several channels in one transaction: `batches` is a list
-- of { channel_id, seqs } (token entries have that shape).
function M.settle_batch(ctx, batches)
  return store.dequeue_batch(ctx.db, batches)
end

-- The channels of the rows with seqs in [first, last], oldest first, at
-- most `limit`: { seq, channel_id } each; nil, err, detail when the store
-- fails.
function M.channels_in(ctx, first, last, limit)
  return store.channels_in(ctx.db, first, last, limit)
end

return M
