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
--
-- It also owns the wake-up queue (issue 5, "fan-out is efficient"): what
-- has new rows in the outbox and should be fed to its client (parked
-- poll, WebSocket). One movie change can queue notifications for 10,000
-- channels at once (movies/notify.lua); feeding them all in one go would
-- hold the event loop for as long as that takes, so the queue is worked
-- through in slices of at most SLICE_MS of work each, measured with
-- ctx.now(), with the loop free for I/O in between. An entry is a channel
-- id (in the queue at most once), or a range of outbox seqs whose
-- channels are read from the outbox RANGE_BATCH rows at a time as the
-- slices reach them (so a change's 10,000 channel ids never pass through
-- Lua in one go). The rows are in the outbox before they are queued, so a
-- wake-up that is late, fails or never comes loses nothing: the next
-- poll, connection or wake-up of that channel finds them (API.md 2,
-- "Nothing lost").
--
-- Written WebSocket messages are settled (their rows deleted) in batches:
-- one transaction per loop turn, or per SETTLE_BATCH messages, rather than
-- one per message, which for a 10,000-channel fan-out was most of the
-- work (each commit writes its own WAL frames). Until the batch is
-- flushed the rows are still stored; a new connection of that channel
-- flushes first, so it cannot be sent them again.
local channels = require("nc.channels")
local outbox = require("nc.outbox")
local poll = require("nc.poll")
local tokens = require("nc.tokens")
local websocket = require("nc.websocket")

local M = {}

-- Work per slice of the wake-up queue. 10 ms keeps a loop that also
-- answers HTTP requests and writes WebSocket frames responsive (issue 5:
-- no stall above a few tens of milliseconds) while each slice still feeds
-- a hundred channels or more. The clock is checked after each channel,
-- so a slice overruns by at most one channel's work.
M.SLICE_MS = 10

-- Pause before the next slice. Not 0: libuv (1.44) runs a 0 ms timer
-- started from a timer callback in the same pass over the timers, before
-- any I/O, so 0 would chain every slice into one long stall; 1 ms lets the
-- loop poll for I/O between slices.
M.SLICE_GAP_MS = 1

-- Outbox rows read per step through a range: well under a millisecond of
-- SQLite, and about what one slice feeds.
M.RANGE_BATCH = 256

-- Written messages settled in one transaction at most, so one flush stays
-- a few milliseconds.
M.SETTLE_BATCH = 256

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
    -- The wake-up queue: entries in [first, last], each a channel id or
    -- a range { first = seq, last = seq }; `queued` the set of channel
    -- ids in it.
    queue = { first = 1, last = 0, entries = {}, queued = {} },
    -- The timer of the next slice, while one is pending.
    slice_timer = nil,
    -- True while a slice runs (a wake-up from inside it is taken in by it
    -- or the next one, never starts another).
    in_slice = false,
    -- Since the queue was last empty: { started, channels, slices,
    -- longest (ms) }, for one log line when it empties again.
    round = nil,
    -- Token entries of written WebSocket messages whose rows are still to
    -- be deleted, their number of rows, and the flush timer.
    settling = { entries = {}, rows = 0, timer = nil },
  }, Delivery)
  -- A WebSocket with more waiting than one pump may send is woken again
  -- through the queue, behind what is already in it.
  d.ws = websocket.new(ctx, t, function(channel_id)
    d:wake({ channel_id })
  end)
  ctx.on_notification = function(channel_id)
    d:notify(channel_id)
  end
  ctx.on_channel_removed = function(channel_id, reason)
    d:removed(channel_id, reason)
  end
  return d
end

-- Notifications for `channel_id` were committed (nc/callbacks.lua): one
-- channel, fed at once.
function Delivery:notify(channel_id)
  self.poll:notify(channel_id)
  self.ws:notify(channel_id)
end

---------------------------------------------------------------------------
-- The wake-up queue
---------------------------------------------------------------------------

local function push(q, entry)
  q.last = q.last + 1
  q.entries[q.last] = entry
end

local function pop(q)
  local entry = q.entries[q.first]
  q.entries[q.first] = nil
  q.first = q.first + 1
  if type(entry) == "string" then
    q.queued[entry] = nil
  end
  return entry
end

-- Notifications for each of `channel_ids` were committed: they join the
-- wake-up queue, which is worked through in slices, the first one as
-- soon as the loop is free. Does no delivery work itself.
function Delivery:wake(channel_ids)
  local q = self.queue
  for _, id in ipairs(channel_ids) do
    if not q.queued[id] then
      q.queued[id] = true
      push(q, id)
    end
  end
  self:schedule(0)
end

-- The outbox rows with seqs first_seq..last_seq were committed (one movie
-- change, movies/notify.lua): their channels are woken as the slices
-- reach them. O(1) here, whatever the number of rows.
function Delivery:wake_range(first_seq, last_seq)
  if first_seq > last_seq then
    return
  end
  push(self.queue, { first = first_seq, last = last_seq })
  self:schedule(0)
end

-- The number of entries in the wake-up queue (a range counts as one).
function Delivery:queued()
  return self.queue.last - self.queue.first + 1
end

-- Sets the timer of the next slice, unless one is set, one is running
-- (it schedules the next itself) or the queue is empty. Without timers (a
-- spec's fake core) the queue is worked through at once.
function Delivery:schedule(ms)
  if self.slice_timer or self.in_slice or self:queued() == 0 then
    return
  end
  local timer = self.ctx.timer
  if not timer then
    self:slice(math.huge)
    return
  end
  self.slice_timer = timer.after(ms, function()
    self.slice_timer = nil
    self:slice(M.SLICE_MS)
  end)
end

local function traceback(e)
  return debug.traceback(tostring(e), 2)
end

-- Feeds one channel; a raise (a bug) is logged, and the rows stay for the
-- channel's next wake-up, poll or connection.
function Delivery:feed(channel_id)
  local ok, err = xpcall(self.notify, traceback, self, channel_id)
  if not ok then
    self.ctx.log("error", string.format("delivery %s: %s", channels.label(channel_id), err))
  end
end

-- Feeds the channels of the next rows of `range` (the queue's head) until
-- the budget is spent (`over`() true). Moves range.first past what was
-- fed. Returns the number of channels fed and whether the range is done.
function Delivery:feed_range(range, over)
  local ctx = self.ctx
  local rows, err, detail = outbox.channels_in(ctx, range.first, range.last, M.RANGE_BATCH)
  if not rows then
    -- The rows stay; their channels get them at their next wake-up, poll
    -- or connection.
    ctx.log("error", string.format("delivery: outbox rows %d-%d: %s", range.first, range.last,
      tostring(detail or err.id)))
    return 0, true
  end
  local n, seen = 0, {}
  for _, row in ipairs(rows) do
    range.first = row.seq + 1
    -- A channel with several rows here (several subscriptions) is fed
    -- once: feeding sends all it has.
    if not seen[row.channel_id] then
      seen[row.channel_id] = true
      self:feed(row.channel_id)
      n = n + 1
      if over() then
        return n, range.first > range.last
      end
    end
  end
  if #rows < M.RANGE_BATCH then
    -- That was every row left of the range (delivered ones are gone).
    range.first = range.last + 1
  end
  return n, range.first > range.last
end

-- Feeds queued entries, oldest first, until the queue is empty or
-- `budget_ms` of ctx.now() time has passed (or the clock went back), then
-- schedules the next slice.
function Delivery:slice(budget_ms)
  local ctx, q = self.ctx, self.queue
  local started = ctx.now()
  local deadline = started + budget_ms / 1000
  local function over()
    local t = ctx.now()
    return t >= deadline or t < started
  end
  local n = 0
  self.in_slice = true
  while q.first <= q.last do
    local entry = q.entries[q.first]
    if type(entry) == "table" then
      local fed, done = self:feed_range(entry, over)
      n = n + fed
      if done then
        pop(q)
      end
    else
      pop(q)
      self:feed(entry)
      n = n + 1
    end
    if over() then
      break
    end
  end
  self.in_slice = false
  local ended = ctx.now()
  local ms = (ended - started) * 1000
  ctx.log("debug", string.format("delivery: woke %d channel(s) in %.0f ms, %d waiting",
    n, ms, self:queued()))
  local round = self.round or { started = started, channels = 0, slices = 0, longest = 0 }
  self.round = round
  round.channels, round.slices = round.channels + n, round.slices + 1
  round.longest = math.max(round.longest, ms)
  if q.first > q.last then
    -- Empty: start the indices again rather than let them grow forever.
    q.first, q.last = 1, 0
    self.round = nil
    if round.slices > 1 then
      -- What a big fan-out cost, in one line (tests/bench/fanout.py reads
      -- it).
      ctx.log("info", string.format("delivery: woke %d channel(s) in %d slices over %.0f ms,"
        .. " longest slice %.0f ms", round.channels, round.slices,
        (ended - round.started) * 1000, round.longest))
    end
  end
  self:schedule(M.SLICE_GAP_MS)
end

---------------------------------------------------------------------------
-- Settling written output
---------------------------------------------------------------------------

local function log_settle_error(ctx, what, err, detail)
  ctx.log("error", string.format("delivery %s: %s", what, tostring(detail or err.id)))
end

-- Deletes the rows of every written WebSocket message waiting to be
-- settled, in one transaction. A failure leaves them to be delivered again
-- (at least once).
function Delivery:flush()
  local s = self.settling
  if s.timer then
    self.ctx.timer.cancel(s.timer)
    s.timer = nil
  end
  if #s.entries == 0 then
    return
  end
  local entries = s.entries
  s.entries, s.rows = {}, 0
  local n, err, detail = outbox.settle_batch(self.ctx, entries)
  if not n then
    log_settle_error(self.ctx, string.format("settling %d message(s)", #entries), err, detail)
  end
end

-- Queues the rows of a written WebSocket message for the next flush: at
-- the next turn of the loop, or now when the batch is full.
function Delivery:settle_later(entry)
  local s = self.settling
  s.entries[#s.entries + 1] = entry
  s.rows = s.rows + #entry.seqs
  local timer = self.ctx.timer
  if #s.entries >= M.SETTLE_BATCH or not timer then
    self:flush()
  elseif not s.timer then
    s.timer = timer.after(0, function()
      s.timer = nil
      self:flush()
    end)
  end
end

---------------------------------------------------------------------------
-- Channels and held connections
---------------------------------------------------------------------------

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

-- A new WebSocket reads the channel's outbox from its oldest row: rows
-- already written on an earlier connection must be gone by then.
function Delivery:ws_open(key, id)
  self:flush()
  self.ws:open(key, id)
end

function Delivery:ws_message(key, id, text)
  self.ws:message(key, id, text)
end

function Delivery:gone(key, id, why, code)
  if why == "stopping" then
    -- The timers stop with the server: settle now what was written, so a
    -- restart does not send it again.
    self:flush()
  end
  if not self.ws:gone(key, id, why, code) then
    self.poll:gone(key, id, why, code)
  end
end

-- app.written: settles the rows of written output, then tells its owner
-- (a lost answer's rows are due again; a written message opens the
-- window). A long poll answer is settled at once: its rows leave the
-- poller's in-flight set right after, and must not be taken again.
-- A WebSocket message's rows wait for the next flush (see above). A
-- settle that fails leaves the rows to be delivered again.
function Delivery:written(token, ok)
  local entry = self.tokens:take(token)
  if not entry then
    return
  end
  if ok and #entry.seqs > 0 then
    if entry.owner == "ws" then
      self:settle_later(entry)
    else
      local n, err, detail = outbox.settle(self.ctx, entry.channel_id, entry.seqs)
      if not n then
        log_settle_error(self.ctx, channels.label(entry.channel_id), err, detail)
      end
    end
  end
  if entry.owner == "poll" then
    self.poll:written(entry, ok)
  else
    self.ws:written(entry, ok)
  end
end

return M
