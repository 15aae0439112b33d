-- Server policy for notification channels: the defaults and bounds the
-- spec leaves to "server policy" (OMA NC 5.2.2.2 channelLifetime, 5.2.2.6
-- maxNotifications and maxWaitTime, 5.2.2.10, 5.2.2.14), read once from
-- core.config (the --config file).
--
-- A requested value outside the bounds is not an error: the spec lets the
-- server change it and return what it granted. A value that cannot mean
-- anything (a negative lifetime, zero notifications) is the caller's
-- SVC0002; this module only clamps.
local values = require("policy_values")

local M = {}

-- key -> default. Every key is an integer number of seconds or of
-- notifications.
M.DEFAULTS = {
  -- One hour, the spec's own default in its examples (6.1.5.6.2 grants
  -- 3600 to a request for 7200).
  channel_lifetime_default = 3600,
  -- A channel shorter than a minute would expire between a client's
  -- create and its first poll on a slow network.
  channel_lifetime_min = 60,
  -- A day: a client that vanished stops costing a row, a timer slot and
  -- its queued notifications within a day.
  channel_lifetime_max = 86400,
  -- Ten per notificationList keeps one response small; a client may ask
  -- for up to 100.
  max_notifications_default = 10,
  max_notifications_max = 100,
  -- Long polls wait 30 s by default and never above 60 s: many proxies and
  -- load balancers cut idle HTTP requests at 60 s, and a poll answered
  -- empty is cheaper than one cut.
  max_wait_time_default = 30,
  max_wait_time_max = 60,
  -- Seconds between the connChecks the server sends on each WebSocket
  -- (OMA NC I.3); 0 sends none. Off by default: I.3 makes client support
  -- for receiving connCheck only RECOMMENDED, and a client without it
  -- would be closed for not answering. The core's own stall timeout
  -- already finds clients that stopped reading.
  ws_conncheck_interval = 0,
  -- Live channels one userId may hold at once; a create beyond it is 403
  -- POL0001. Every channel costs a row, an expiry slot, a WebSocket or a
  -- parked poll and its queued notifications, and a user's list is one
  -- response, so a client looping on create (or one that never reuses its
  -- clientCorrelator) must hit a wall long before the server does. A real
  -- client needs a channel per application, a handful at most.
  max_channels_per_user = 100,
  -- Notifications one callback POST may carry in a notificationList;
  -- more is 400 SVC0003 and stores nothing. A POST is split and stored in
  -- one transaction, in one turn of the event loop that every other client
  -- waits for: 100,000 tiny ones (900 KB) took about 2 s, 1,000 take 20-30
  -- ms, and refusing the 100,000 about 0.1 s (RelWithDebInfo build). An
  -- enabler with more to say posts several lists.
  max_callback_notifications = 1000,
  -- Notifications the outbox may hold for one channel before its callback
  -- POSTs are refused with 503 SVC2001 and Retry-After (nothing of the
  -- POST stored) until delivery drains it. A client away for a while is
  -- normal; a store that grows without bound until the channel expires
  -- (channel_lifetime_max, a day) is not. 10,000 is hours of a busy
  -- enabler, and the rows of one channel are read in seq order through
  -- the outbox_channel index, so a client that comes back still gets
  -- them in pages of max_notifications. The check counts at most this
  -- many rows per POST. Movie fan-out (movies/notify.lua) is not capped
  -- by it: its growth is already bounded by the subscriptions per user,
  -- one row per movie change, and the channel's lifetime; a full channel
  -- only refuses the callbackURL.
  max_queued_notifications = 10000,
}

-- The policy of `config` (core.config or any table with the same keys).
-- Raises a one-line message for a value that makes no sense, so a bad
-- config file stops the server at start rather than at the first request.
function M.from_config(config)
  local p = values.integers(M.DEFAULTS, config)
  values.check_lifetime(p, "channel_lifetime")
  values.check(p.max_notifications_default >= 1
    and p.max_notifications_default <= p.max_notifications_max,
    "need 1 <= max_notifications_default <= max_notifications_max")
  values.check(p.max_wait_time_default <= p.max_wait_time_max,
    "need max_wait_time_default <= max_wait_time_max")
  values.check_at_least_1(p, "max_channels_per_user", "max_callback_notifications",
    "max_queued_notifications")
  return p
end

-- The lifetime granted for a requested one (nil: none requested).
function M.lifetime(p, requested)
  return values.grant(requested, p.channel_lifetime_default, p.channel_lifetime_min,
    p.channel_lifetime_max)
end

-- maxNotifications granted for a requested one (>= 1, or nil).
function M.max_notifications(p, requested)
  return values.grant(requested, p.max_notifications_default, 1, p.max_notifications_max)
end

-- maxWaitTime granted for a requested one (>= 0, or nil). Zero stays zero:
-- 5.2.2.6 gives it the meaning "answer as soon as there is anything".
function M.max_wait_time(p, requested)
  return values.grant(requested, p.max_wait_time_default, 0, p.max_wait_time_max)
end

return M
