-- Checking a decoded movieSubscription (the shape is movies/subscriptions/
-- codec.lua's job) and turning it into what the client asked for. Only
-- checks that need nothing but the document are here; whether notifyURL
-- names a live channel of the user and whether the movies exist is asked
-- of the store (movies/subscriptions/model.lua).
--
-- Every refusal is 400 SVC0002 naming the element by its path below the
-- root, as the codec names it: "callbackReference.notificationFormat",
-- "filter.movieId", "duration". That includes the caps on the sizes of
-- what a client sends (below): API.md 3 answers validation errors with
-- SVC0002, the channel API's caps on its text (nc/channels.lua
-- MAX_TAG_CHARS) do the same, and filter.movieId already gets SVC0002
-- for an unknown or non-positive id, so each element has one code
-- whatever is wrong with it. (The callback's notificationList cap is
-- SVC0003 with "at most N" because N is configurable, and an enabler must
-- learn it to split its lists; these caps are fixed and documented here.)
local errors = require("codec.errors")
local channels = require("nc.channels")

local M = {}

-- callbackReference.notificationFormat (API.md 3) -> the value stored in
-- movie_subscriptions.notification_format.
M.FORMATS = { JSON = "json", XML = "xml" }
-- And back, for the representation.
M.FORMAT_NAMES = { json = "JSON", xml = "XML" }

-- At most this many distinct movieIds in one filter. Each id is a row of
-- movie_subscription_filter and a row of the fan-out table (movie_fanout,
-- sql/006_movie_fanout.sql) that carries its own copy of the
-- callbackData, all written in one transaction, in one turn of the event
-- loop every other client waits for; each is also checked against the
-- movies and repeated in every representation of the subscription. A
-- subscription to more movies than this is better written without a
-- filter (every movie: one fan-out row). Duplicates are collapsed before
-- counting: they cost nothing once collapsed.
M.MAX_FILTER_IDS = 1000

-- The most characters a clientCorrelator may have: a channel's
-- (nc/channels.lua MAX_TAG_CHARS, which says why), since API.md 3 has it
-- behave as for channels and a client's correlators fit both or neither.
M.MAX_CORRELATOR_CHARS = channels.MAX_TAG_CHARS

-- The most characters a callbackData may have. The common
-- CallbackReference gives it no length (xsd:string), but it is opaque
-- data for the client to tell its subscriptions apart, and the server
-- copies it into every notification of the subscription: it is stored
-- three times (as sent, and ready-made for JSON and XML), again in each
-- fan-out row (one per movie of the filter, up to MAX_FILTER_IDS), and
-- written into the outbox once per matching movie change. 1 MB of it
-- would make each change megabytes per subscription. A UUID, a URL or a
-- small JSON object fits in 1024 characters.
M.MAX_CALLBACK_DATA_CHARS = 1024

-- Characters XML 1.0 (2.2) cannot carry, even escaped: callbackData goes
-- verbatim into XML notifications, so it must not hold them.
local XML_ILLEGAL = "[%z\1-\8\11\12\14-\31]"

local function invalid(name)
  return nil, errors.new("SVC0002", name)
end

-- Characters, not bytes: the decoders have made sure text is UTF-8 (a
-- string that is not counts in bytes, and is refused elsewhere anyway).
local function chars(s)
  return utf8.len(s) or #s
end

-- A sorted list of the distinct ids of `list`, or nil and the error.
local function movie_ids(list)
  if type(list) ~= "table" or #list == 0 then
    return invalid("filter.movieId")
  end
  local seen, ids = {}, {}
  for _, id in ipairs(list) do
    if math.type(id) ~= "integer" or id < 1 then
      return invalid("filter.movieId")
    end
    if not seen[id] then
      seen[id] = true
      ids[#ids + 1] = id
    end
  end
  if #ids > M.MAX_FILTER_IDS then
    return invalid("filter.movieId")
  end
  table.sort(ids)
  return ids
end

-- Checks a decoded movieSubscription of a create (POST) and returns
--   { notify_url, callback_data, notification_format = "json" | "xml",
--     movie_ids = { sorted, distinct } | nil (no filter: every movie),
--     client_correlator, duration }   (nil where not asked)
-- or nil and 400 SVC0002 naming the element:
--   the root when it is no object; resourceURL (the server's to fill);
--   a missing or empty notifyURL; callbackData that XML cannot carry or
--   longer than MAX_CALLBACK_DATA_CHARS; a notificationFormat other than
--   "JSON" or "XML"; a filter without movieIds, with one that is not a
--   positive integer, or with more than MAX_FILTER_IDS distinct ones; a
--   negative duration; a clientCorrelator that is no string or longer
--   than MAX_CORRELATOR_CHARS.
function M.create(doc)
  if type(doc) ~= "table" then
    return invalid("movieSubscription")
  end
  if doc.resourceURL ~= nil then
    return invalid("resourceURL")
  end
  local ref = doc.callbackReference
  if type(ref) ~= "table" then
    return invalid("callbackReference")
  end
  local url = ref.notifyURL
  if type(url) ~= "string" or url == "" then
    return invalid("callbackReference.notifyURL")
  end
  local data = ref.callbackData
  if data ~= nil and (type(data) ~= "string" or not utf8.len(data)
      or data:find(XML_ILLEGAL) or chars(data) > M.MAX_CALLBACK_DATA_CHARS) then
    return invalid("callbackReference.callbackData")
  end
  local format = "json"
  if ref.notificationFormat ~= nil then
    format = M.FORMATS[ref.notificationFormat]
    if not format then
      return invalid("callbackReference.notificationFormat")
    end
  end

  local values = {
    notify_url = url,
    callback_data = data,
    notification_format = format,
  }
  if doc.filter ~= nil then
    if type(doc.filter) ~= "table" then
      return invalid("filter")
    end
    local ids, err = movie_ids(doc.filter.movieId)
    if not ids then
      return nil, err
    end
    values.movie_ids = ids
  end
  local correlator = doc.clientCorrelator
  if correlator ~= nil then
    if type(correlator) ~= "string" or chars(correlator) > M.MAX_CORRELATOR_CHARS then
      return invalid("clientCorrelator")
    end
    values.client_correlator = correlator
  end
  local duration = doc.duration
  if duration ~= nil then
    -- Zero or more: the policy raises it to its minimum. A negative
    -- duration means nothing.
    if math.type(duration) ~= "integer" or duration < 0 then
      return invalid("duration")
    end
    values.duration = duration
  end
  return values
end

return M
