-- Stored subscriptions as the normalised values movies/subscriptions/
-- codec.lua writes (API.md 3), and callbackData in the two ready-made
-- forms the fan-out drops into notifications.
local json = require("codec.json")
local xml = require("codec.xml")
local urls = require("movies.subscriptions.urls")
local validate = require("movies.subscriptions.validate")

local M = {}

-- callbackData as a JSON string literal, quotes included ("\"abc\""), or
-- nil for none: the movie_subscriptions.callback_data_json column.
function M.callback_data_json(data)
  if data == nil then
    return nil
  end
  return json.encode(data)
end

local QUOTES = { ['"'] = "&quot;", ["'"] = "&apos;" }

-- callbackData escaped as XML character data, or nil for none: the
-- callback_data_xml column. &, <, > (and a carriage return, which XML
-- end-of-line handling would eat) as codec/xml escapes them, and quotes
-- too, so the text is safe in an attribute value as well. The data was
-- checked to hold no character XML 1.0 cannot carry
-- (movies/subscriptions/validate.lua), so nothing is replaced.
function M.callback_data_xml(data)
  if data == nil then
    return nil
  end
  return (xml.escape(data):gsub("[\"']", QUOTES))
end

-- The movieSubscription of `row` (a movie_subscriptions row) whose filter
-- holds `movie_ids` (ascending; ignored for an all-movies subscription,
-- which has no filter element). duration is the granted one.
function M.subscription(public_url, row, movie_ids)
  local value = {
    callbackReference = {
      notifyURL = row.notify_url,
      callbackData = row.callback_data,
      notificationFormat = validate.FORMAT_NAMES[row.notification_format],
    },
    clientCorrelator = row.client_correlator,
    duration = math.tointeger(row.duration),
    resourceURL = public_url .. row.resource_path,
  }
  if tonumber(row.all_movies) ~= 1 then
    value.filter = { movieId = movie_ids or {} }
  end
  return value
end

-- The movieSubscriptionList of `rows`, all of `user_id`; `filters` maps
-- each subscription_id to its movie ids.
function M.list(public_url, user_id, rows, filters)
  local items = {}
  for i, row in ipairs(rows) do
    items[i] = M.subscription(public_url, row, filters[row.subscription_id])
  end
  return {
    movieSubscription = items,
    resourceURL = urls.collection(public_url, user_id),
  }
end

return M
