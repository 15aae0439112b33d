-- Ends movie subscriptions at the end of their duration (API.md 3:
-- duration behaves as a channel's lifetime; an expired subscription is
-- gone), through the shared scheduler of expiry_timer.lua. Reads check
-- expires_at themselves (movies/subscriptions/model.lua find and list), and
-- so does the fan-out, so a late timer never lets an expired subscription
-- answer or be notified.
local expiry_timer = require("expiry_timer")
local model = require("movies.subscriptions.model")
local store = require("movies.subscriptions.store")

local M = setmetatable({}, { __index = expiry_timer })

local ROWS = {
  label = "movie subscription expiry",
  -- model.remove_expired logs each subscription it ends.
  remove_expired = model.remove_expired,
  next_expiry = store.next_expiry,
}

-- A scheduler for ctx (db, now, log) using `timer` (core.timer).
function M.new(ctx, timer)
  return expiry_timer.new(ctx, timer, ROWS)
end

return M
