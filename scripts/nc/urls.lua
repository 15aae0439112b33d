-- Every URL the Notification Channel API hands out, built from public_url
-- (app.lua strips its trailing slashes) and the ids. API.md 2: userId is
-- re-encoded in each URL, so "tel:+19585550100" appears as
-- "tel%3A%2B19585550100".
local percent = require("codec.percent")

local M = {}

-- The path of the API (OMA NC 5.1: /notificationchannel/{apiVersion}).
M.BASE = "/notificationchannel/v1"

local function enc(s)
  return percent.encode(s)
end

-- False for the userIds whose URLs could not be followed: "." and ".."
-- (sent as such or as %2E, %2e%2E) stay dot segments once encoded, since
-- "." is unreserved (RFC 3986 2.3), and clients (browsers, curl, most
-- HTTP libraries) remove dot segments before sending (RFC 3986 5.2.4), so
-- ".../v1/../channels" would reach "/notificationchannel/channels" instead. The empty userId makes an empty
-- segment, which the router never matches. No real userId (tel:, acr:,
-- sip:...) is any of these.
function M.usable_user(user_id)
  return type(user_id) == "string" and user_id ~= "" and user_id ~= "."
    and user_id ~= ".."
end

-- {public_url}/notificationchannel/v1/{userId}/channels
function M.channels(public_url, user_id)
  return public_url .. M.BASE .. "/" .. enc(user_id) .. "/channels"
end

-- The channel's resourceURL.
function M.channel(public_url, user_id, channel_id)
  return M.channels(public_url, user_id) .. "/" .. enc(channel_id)
end

-- channelURL of a LongPolling channel (6.3: POST here to poll).
function M.long_poll(public_url, user_id, channel_id)
  return M.channel(public_url, user_id, channel_id) .. "/notifications"
end

-- channelURL of a WebSockets channel: the same origin with ws (wss when
-- public_url is https), as in the spec's example 6.1.5.6.2.
function M.websocket(public_url, user_id, channel_id)
  local url = M.channel(public_url, user_id, channel_id) .. "/ws"
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if scheme and scheme:lower() == "https" then
    return "wss://" .. rest
  elseif scheme and scheme:lower() == "http" then
    return "ws://" .. rest
  end
  return url
end

-- The callbackURL given to enablers.
function M.callback(public_url, callback_id)
  return public_url .. M.BASE .. "/callbacks/" .. enc(callback_id)
end

-- The callbackId of a callbackURL this server handed out, or nil for any
-- other URL (another server's, another path). For the movie subscriptions,
-- whose notifyURL must be one of our callbackURLs (API.md 3).
function M.callback_id(public_url, url)
  if type(url) ~= "string" then
    return nil
  end
  local prefix = public_url .. M.BASE .. "/callbacks/"
  if url:sub(1, #prefix) ~= prefix then
    return nil
  end
  local seg = url:sub(#prefix + 1)
  if seg == "" or seg:find("[/?#]") then
    return nil
  end
  return percent.decode(seg)
end

return M
