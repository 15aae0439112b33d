-- Server policy for movie subscriptions: how long one lives, and how many
-- one user may hold. API.md 3: duration behaves as a channel's lifetime
-- does (nc/policy.lua): none asked gives the default, any asked is clamped
-- to [min, max], and the response carries what was granted. Read once
-- from core.config (the --config file).
local values = require("policy_values")

local M = {}

-- key -> default: the durations in seconds, the cap in subscriptions.
M.DEFAULTS = {
  -- An hour, as for channels: a subscription is no use without its
  -- channel, which lives an hour by default.
  subscription_duration_default = 3600,
  -- Shorter than a minute would end before a client had seen a change.
  subscription_duration_min = 60,
  -- A day: a forgotten subscription stops costing a row, and a share of
  -- every movie change's fan-out, within a day.
  subscription_duration_max = 86400,
  -- Live subscriptions one userId may hold at once; a create beyond it is
  -- 403 POL0001. Each costs a row, an expiry slot and its rows in the
  -- fan-out table (one per movie of its filter, up to
  -- validate.MAX_FILTER_IDS), every matching movie change writes one
  -- notification per subscription into the outbox, and a user's list is
  -- one response: a client looping on create (or one that never reuses
  -- its clientCorrelator) must hit a wall long before the server does.
  -- The same 100 as max_channels_per_user: a subscription without a
  -- filter already covers every movie, so a real client needs a handful.
  max_subscriptions_per_user = 100,
}

-- The policy of `config` (core.config or any table with the same keys).
-- Raises a one-line message for values that make no sense, so a bad
-- config file stops the server at start, not at the first subscription.
function M.from_config(config)
  local p = values.integers(M.DEFAULTS, config)
  values.check_lifetime(p, "subscription_duration")
  -- Zero would refuse every create: never what is meant.
  values.check_at_least_1(p, "max_subscriptions_per_user")
  return p
end

-- The duration granted for a requested one (nil: none requested). A
-- request below the minimum, 0 included, gets the minimum.
function M.duration(p, requested)
  return values.grant(requested, p.subscription_duration_default,
    p.subscription_duration_min, p.subscription_duration_max)
end

return M
