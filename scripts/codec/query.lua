-- Query strings (application/x-www-form-urlencoded, as browsers and curl
-- send them): "a=1&b=x+y&c=%2F".
local errors = require("codec.errors")
local percent = require("codec.percent")

local M = {}

local function decode_component(s)
  -- In this encoding "+" is a space; a literal "+" arrives as "%2B".
  return percent.decode((s:gsub("+", " ")))
end

-- Parses `qs` (the raw text after "?", "" when none) into a table of
-- name -> list of values in order of appearance, so repeated names are
-- neither lost nor silently merged. A pair without "=" has the value "".
-- Returns nil and SVC0002 naming the parameter when an escape is broken.
function M.parse(qs)
  local params = {}
  for pair in (qs or ""):gmatch("[^&]+") do
    local raw_name, raw_value = pair:match("^([^=]*)=?(.*)$")
    local name = decode_component(raw_name)
    if not name then
      return nil, errors.new("SVC0002", raw_name)
    end
    local value = decode_component(raw_value)
    if not value then
      return nil, errors.new("SVC0002", name)
    end
    local list = params[name]
    if not list then
      list = {}
      params[name] = list
    end
    list[#list + 1] = value
  end
  return params
end

-- The single value of `name`: nil when absent, or nil and SVC0002 when the
-- parameter is repeated (which of two limits would the client mean?).
function M.one(params, name)
  local list = params[name]
  if not list then
    return nil
  end
  if #list > 1 then
    return nil, errors.new("SVC0002", name)
  end
  return list[1]
end

return M
