-- The schema of the movies API's documents (API.md 3) for
-- codec/representation: the movie subscription resources, and the
-- movieNotification a subscription is sent. Each type lists its elements
-- in XML sequence order, each element with
--
--   name        the element name (camelCase, as in API.md 3)
--   kind        "string", "anyURI", "int", "date", "dateTime", or the name
--               of another type here
--   repeatable  true for [0..unbounded]: the normalised value is then always
--               a Lua sequence, possibly empty
--   required    true where a document without it is invalid
--   nillable    true where JSON null / xsi:nil="true" stands for "had no
--               value" (the normalised value is then codec/json's null)
--
-- movies/subscriptions/codec.lua reads and writes the subscriptions in JSON
-- and XML with this one table, so the two formats cannot drift apart.
-- movieNotification is written by movies/notify.lua, in each format
-- directly; described here, it is converted typed when a long poll asks
-- for the format it was not stored in (codec/notification; the
-- subscriptions area registers it at start). Its types must say what
-- notify.lua writes, in the same order.
--
-- callbackReference follows the common CallbackReference of the OMA REST
-- NetAPIs (notifyURL, callbackData, notificationFormat), link the common
-- Link; the rest is ours.
local M = {}

-- Our own namespace: the movies API is not an OMA enabler, so it may not
-- claim an urn:oma name. Children are unqualified, as in the NC XML.
M.NAMESPACE = "urn:ncserver:xml:movies:1"
M.PREFIX = "mv"

local function el(name, kind, required, repeatable, nillable)
  return { name = name, kind = kind, required = required or false,
    repeatable = repeatable or false, nillable = nillable or false }
end

local REQUIRED, OPTIONAL = true, false

M.types = {
  MovieSubscriptionList = {
    el("movieSubscription", "MovieSubscription", OPTIONAL, true),
    el("resourceURL", "anyURI", REQUIRED),
  },
  MovieSubscription = {
    el("callbackReference", "CallbackReference", REQUIRED),
    -- Absent: every movie.
    el("filter", "MovieFilter", OPTIONAL),
    el("clientCorrelator", "string", OPTIONAL),
    -- Seconds; the server grants a value within its policy.
    el("duration", "int", OPTIONAL),
    -- The server's to fill; a create must not carry it.
    el("resourceURL", "anyURI", OPTIONAL),
  },
  CallbackReference = {
    el("notifyURL", "anyURI", REQUIRED),
    -- Opaque to the server, returned verbatim in every notification.
    el("callbackData", "string", OPTIONAL),
    -- "JSON" or "XML"; JSON when absent.
    el("notificationFormat", "string", OPTIONAL),
  },
  MovieFilter = {
    -- One or more when the filter is present; movies/subscriptions/
    -- validate.lua says so, as the schema alone cannot ("at least one").
    el("movieId", "int", OPTIONAL, true),
  },
  -- API.md 3, in the order of movies/notify.lua's header.
  MovieNotification = {
    el("callbackData", "string", OPTIONAL),
    -- MovieCreated, MovieUpdated or MovieDeleted.
    el("eventType", "string", REQUIRED),
    el("movie", "Movie", REQUIRED),
    el("changedFields", "string", OPTIONAL, true),
    -- Absent for MovieCreated.
    el("previous", "PreviousMovie", OPTIONAL),
    el("link", "Link", REQUIRED),
  },
  -- A movie as GET /movies/{movieId} shows it (movies/represent.lua), in
  -- the order of API.md 3.
  Movie = {
    el("movieId", "int", REQUIRED),
    el("title", "string", REQUIRED),
    el("premiereDate", "date", REQUIRED),
    el("director", "string", OPTIONAL),
    el("genre", "string", OPTIONAL),
    el("lastModified", "dateTime", REQUIRED),
    el("resourceURL", "anyURI", REQUIRED),
  },
  -- PreviousMovie (below): the Movie elements, each optional and nillable.
  -- common:Link [REST_NetAPI_Common]: in XML both are attributes.
  Link = {
    el("rel", "string", REQUIRED),
    el("href", "anyURI", REQUIRED),
  },
}

-- The values before a change of the fields it changed: any of the movie's
-- elements, null (xsi:nil) for one that had no value.
do
  local previous = {}
  for i, e in ipairs(M.types.Movie) do
    previous[i] = el(e.name, e.kind, OPTIONAL, false, true)
  end
  M.types.PreviousMovie = previous
end

-- Root element name -> type name.
M.roots = {
  movieSubscription = "MovieSubscription",
  movieSubscriptionList = "MovieSubscriptionList",
  movieNotification = "MovieNotification",
}

-- Elements of these types that XML carries as attributes, not children.
M.attributes = { Link = true }

-- The element list of the type named `name` (raises for an unknown name:
-- a bug in the schema or its caller).
function M.fields(name)
  local t = M.types[name]
  if not t then
    error("unknown movies type " .. tostring(name), 2)
  end
  return t
end

local SCALARS = { string = true, anyURI = true, int = true, date = true, dateTime = true }

-- True when `kind` names a scalar rather than a nested type.
function M.is_scalar(kind)
  return SCALARS[kind] == true
end

return M
