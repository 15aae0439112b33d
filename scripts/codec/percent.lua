-- Percent-encoding (RFC 3986 2.1) of path segments and query components.
--
-- API.md 2: a userId such as "tel:+19585550100" travels in paths as
-- "tel%3A%2B19585550100"; it is decoded before use and re-encoded in every
-- URL we hand out.
local M = {}

-- RFC 3986 2.3: the unreserved characters never need encoding; every other
-- byte is encoded so the result is safe in a path segment and in a query.
local UNRESERVED = "[^%w%-%._~]"

-- Decodes %XX escapes. "+" is left alone: it means a space only in
-- form-encoded query strings (codec/query handles that). Returns nil and a
-- message for a "%" not followed by two hex digits, rather than guessing.
function M.decode(s)
  if not s:find("%", 1, true) then
    return s
  end
  if s:find("%%%X") or s:find("%%%x%X") or s:find("%%.?$") then
    return nil, "invalid percent-encoding"
  end
  return (s:gsub("%%(%x%x)", function(hex)
    return string.char(tonumber(hex, 16))
  end))
end

-- Encodes every byte outside the unreserved set, upper-case hex as
-- RFC 3986 2.1 recommends.
function M.encode(s)
  return (s:gsub(UNRESERVED, function(c)
    return string.format("%%%02X", c:byte())
  end))
end

return M
