-- The paths and URLs of the movie subscription resources (API.md 3). As in
-- the Notification Channel API, userId travels percent-encoded
-- ("tel%3A%2B19585550100") and is re-encoded in every URL we hand out.
local percent = require("codec.percent")

local M = {}

M.BASE = "/movies/v1"

local function enc(s)
  return percent.encode(s)
end

-- /movies/v1/{userId}/subscriptions
function M.collection_path(user_id)
  return M.BASE .. "/" .. enc(user_id) .. "/subscriptions"
end

-- /movies/v1/{userId}/subscriptions/{subscriptionId}: what the table's
-- resource_path holds, so the fan-out builds the notification's link as
-- public_url .. resource_path without knowing these rules.
function M.resource_path(user_id, subscription_id)
  return M.collection_path(user_id) .. "/" .. enc(subscription_id)
end

-- The list's resourceURL.
function M.collection(public_url, user_id)
  return public_url .. M.collection_path(user_id)
end

-- A subscription's resourceURL (and the Location of its create).
function M.resource(public_url, user_id, subscription_id)
  return public_url .. M.resource_path(user_id, subscription_id)
end

return M
