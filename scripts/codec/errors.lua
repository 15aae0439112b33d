-- The one registry of OMA exceptions this server answers with, and the
-- requestError body built from them.
--
-- OMA NC 7 refers the common codes to REST_NetAPI_Common; the texts and
-- HTTP statuses below are those common definitions (SVC0001-SVC0005,
-- POL0001, SVC2001), plus the two codes NC 7.1.1 and 7.2.1 add. The
-- `text` keeps its %1, %2 placeholders and the values travel in
-- `variables`, exactly as the spec's own examples show (NC 6.1.5.7, D.8).
--
-- SVC3000-SVC3003 are ours. The OMNA exception code registry leaves the
-- range 3000-3499 to private use, and no common code says "this path names
-- no resource", "wrong method" or "wrong media type": SVC0002 would claim a
-- bad input value where there is none, SVC0004 is about addresses.
--
-- This module requires nothing (codec/json requires it), so `variables` is
-- marked as a JSON array by the duck-typed `__jsontype` field that
-- codec/json honours: an exception with no variables must still encode
-- `"variables": []`.
local M = {}

local SERVICE = "serviceException"
local POLICY = "policyException"

local ARRAY_MT = { __jsontype = "array" }

-- id -> { kind, HTTP status, text, number of variables }
local REGISTRY = {
  -- Common: the service could not do what was asked; %1 says why. We use
  -- it for bodies that are not JSON at all (API.md 2, "SVC0001-family").
  SVC0001 = { SERVICE, 400, "A service error occurred. Error code is %1", 1 },
  -- Common: %1 names the element (or query parameter) that is wrong or
  -- missing.
  SVC0002 = { SERVICE, 400, "Invalid input value for message part %1", 1 },
  SVC0003 = { SERVICE, 400,
    "Invalid input value for message part %1, valid values are %2", 2 },
  SVC0004 = { SERVICE, 400, "No valid addresses provided in message part %1", 1 },
  SVC0005 = { SERVICE, 409,
    "Correlator %1 specified in message part %2 is a duplicate", 2 },
  -- NC 7.1.1: a second long poll on a channel ends the first.
  SVC1012 = { SERVICE, 409, "Simultaneous channel requests not supported", 0 },
  -- Common: the server cannot serve now (our storage failed or is busy).
  SVC2001 = { SERVICE, 503, "No server resources available to process the request", 0 },
  -- Private range (see above). %1 is the request path as sent.
  SVC3000 = { SERVICE, 404, "Resource %1 not found", 1 },
  -- %1 the method, %2 the Allow list.
  SVC3001 = { SERVICE, 405, "Method %1 not allowed, allowed methods are %2", 2 },
  -- %1 the Content-Type received, %2 the types accepted.
  SVC3002 = { SERVICE, 415, "Content type %1 not supported, supported types are %2", 2 },
  -- %1 the Accept header received, %2 the types offered.
  SVC3003 = { SERVICE, 406, "None of the media types %1 can be produced, available types are %2", 2 },

  POL0001 = { POLICY, 403, "A policy error occurred. Error code is %1", 1 },
  -- NC 7.2.1: %1 the refused type, %2 the comma-separated supported ones.
  POL1023 = { POLICY, 403,
    "Notification channel type %1 not supported. Supported types: %2.", 2 },
  -- Common, as used by NC 6.1.5.4: %1 names the feature.
  POL2006 = { POLICY, 403, "Requested feature %1 is not available", 1 },
}

-- Builds an error value: { id, kind, status, text, variables }. Unknown ids
-- and a wrong number of variables are bugs in the caller, so they raise.
function M.new(id, ...)
  local entry = REGISTRY[id]
  if not entry then
    error("unknown OMA exception id " .. tostring(id), 2)
  end
  local n = select("#", ...)
  if n ~= entry[4] then
    error(string.format("%s takes %d variables, got %d", id, entry[4], n), 2)
  end
  local variables = {}
  for i = 1, n do
    variables[i] = tostring((select(i, ...)))
  end
  return {
    id = id,
    kind = entry[1],
    status = entry[2],
    text = entry[3],
    variables = variables,
  }
end

-- True for values built by M.new, so a caller can tell an OMA error from a
-- plain message.
function M.is_error(value)
  return type(value) == "table" and REGISTRY[value.id] ~= nil
    and type(value.variables) == "table"
end

-- The requestError document for `err` (a plain table for codec/json).
function M.body(err)
  local variables = setmetatable({}, ARRAY_MT)
  for i, v in ipairs(err.variables) do
    variables[i] = v
  end
  return {
    requestError = {
      [err.kind] = {
        messageId = err.id,
        text = err.text,
        variables = variables,
      },
    },
  }
end

-- Every registered id, sorted (for specs that check the whole registry).
function M.ids()
  local ids = {}
  for id in pairs(REGISTRY) do
    ids[#ids + 1] = id
  end
  table.sort(ids)
  return ids
end

-- The text with its placeholders filled in, for log lines.
function M.message(err)
  return (err.text:gsub("%%(%d)", function(i)
    return err.variables[tonumber(i)] or ("%" .. i)
  end))
end

return M
