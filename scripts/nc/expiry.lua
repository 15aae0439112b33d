-- Ends channels at the end of their lifetime (OMA NC 5.2.2.2
-- channelLifetime; API.md 2: a channel past its lifetime is gone, with
-- everything queued for it), through the shared scheduler of
-- expiry_timer.lua. Every access checks expires_at itself
-- (nc/channels.lua find), so a late timer never lets an expired channel
-- answer.
local expiry_timer = require("expiry_timer")
local channels = require("nc.channels")
local store = require("nc.store")

local M = setmetatable({}, { __index = expiry_timer })

local ROWS = {
  label = "channel expiry",
  remove_expired = channels.remove_expired,
  next_expiry = store.next_expiry,
}

-- A scheduler for ctx (db, now, log, policy, on_channel_removed) using
-- `timer` (core.timer).
function M.new(ctx, timer)
  return expiry_timer.new(ctx, timer, ROWS)
end

return M
