-- The schema of the movie subscription documents (API.md 3), in the form
-- nc/types.lua gives the Notification Channel types: each type lists its
-- elements in XML sequence order, each element with
--
--   name        the element name (camelCase, as in API.md 3)
--   kind        "string", "anyURI", "int", or the name of another type here
--   repeatable  true for [0..unbounded]: the normalised value is then always
--               a Lua sequence, possibly empty
--   required    true where a document without it is invalid
--
-- movies/subscriptions/codec.lua reads and writes JSON and XML with this
-- one table, so the two formats cannot drift apart.
--
-- callbackReference follows the common CallbackReference of the OMA REST
-- NetAPIs (notifyURL, callbackData, notificationFormat); the rest is ours.
local M = {}

-- Our own namespace: the movies API is not an OMA enabler, so it may not
-- claim an urn:oma name. Children are unqualified, as in the NC XML.
M.NAMESPACE = "urn:ncserver:xml:movies:1"
M.PREFIX = "mv"

local function el(name, kind, required, repeatable)
  return { name = name, kind = kind, required = required or false,
    repeatable = repeatable or false }
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
}

-- Root element name -> type name.
M.roots = {
  movieSubscription = "MovieSubscription",
  movieSubscriptionList = "MovieSubscriptionList",
}

-- The element list of the type named `name` (raises for an unknown name:
-- a bug in the schema or its caller).
function M.fields(name)
  local t = M.types[name]
  if not t then
    error("unknown movie subscription type " .. tostring(name), 2)
  end
  return t
end

local SCALARS = { string = true, anyURI = true, int = true }

-- True when `kind` names a scalar rather than a nested type.
function M.is_scalar(kind)
  return SCALARS[kind] == true
end

return M
