-- Server policy read from core.config (the --config file): integer keys
-- with defaults, checked once at start, the rule by which a requested
-- value is granted, and the per-user cap on live resources. Channels
-- (nc/policy.lua) and movie subscriptions (movies/subscriptions/policy.lua)
-- each name their own keys.
local errors = require("codec.errors")

local M = {}

-- key -> integer for every key of `defaults`, from `config` (core.config
-- or any table) where it is set. Raises a one-line message for a value
-- that is not a non-negative integer, so a bad config file stops the
-- server at start rather than at the first request.
function M.integers(defaults, config)
  config = config or {}
  local p = {}
  for key, default in pairs(defaults) do
    local v = config[key]
    local n = v == nil and default or math.tointeger(v)
    if not n or n < 0 then
      error(string.format("config %s must be a non-negative integer, not %s",
        key, tostring(v)), 0)
    end
    p[key] = n
  end
  return p
end

-- Raises a one-line message naming the first key of `config` (in sorted
-- order, so the message is the same on every start) that no table of
-- `known` has: a misspelt key would otherwise leave its setting at the
-- default without a word. `known` is a list of key -> anything tables.
function M.check_known(config, known)
  local keys = {}
  for key in pairs(config or {}) do
    keys[#keys + 1] = tostring(key)
  end
  table.sort(keys)
  for _, key in ipairs(keys) do
    local found = false
    for _, set in ipairs(known) do
      if set[key] ~= nil then
        found = true
        break
      end
    end
    if not found then
      error(string.format("config: unknown key %q (the keys are in README.md,"
        .. " Running)", key), 0)
    end
  end
end

-- Raises "config: <message>" unless ok.
function M.check(ok, message)
  if not ok then
    error("config: " .. message, 0)
  end
end

-- Checks that each named key of `p` is at least 1: a cap of zero would
-- refuse everything it caps, never what is meant.
function M.check_at_least_1(p, ...)
  for _, key in ipairs({ ... }) do
    M.check(p[key] >= 1, key .. " must be at least 1")
  end
end

-- The 403 POL0001 for a user who already has `count` live `what`s (plural,
-- e.g. "notification channels") of at most `limit`, or nil while there is
-- room.
function M.beyond_user_limit(count, limit, what)
  if count >= limit then
    return errors.new("POL0001", string.format("too many %s for this user (limit %d)",
      what, limit))
  end
end

-- Checks the <name>_min / _default / _max triple of a lifetime in seconds:
-- at least 1, and min <= default <= max.
function M.check_lifetime(p, name)
  local min, default, max = name .. "_min", name .. "_default", name .. "_max"
  M.check(p[min] >= 1, min .. " must be at least 1")
  M.check(p[min] <= p[default] and p[default] <= p[max],
    string.format("need %s <= %s <= %s", min, default, max))
end

-- What is granted for `requested`: the default when nothing was asked,
-- else the request clamped to [lo, hi]. A request outside the bounds is
-- not an error: the server may change it and returns what it granted.
function M.grant(requested, default, lo, hi)
  if requested == nil then
    return default
  elseif requested < lo then
    return lo
  elseif requested > hi then
    return hi
  end
  return requested
end

return M
