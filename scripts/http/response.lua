-- Building the response tables core/script.h expects back from app.handle:
-- { status, headers, body }.
local errors = require("codec.errors")
local json = require("codec.json")

local M = {}

M.JSON = "application/json"

-- A JSON response. `headers` (optional) is copied, then Content-Type set.
function M.json(status, value, headers)
  local h = {}
  for name, v in pairs(headers or {}) do
    h[name] = v
  end
  h["Content-Type"] = M.JSON
  return { status = status, headers = h, body = json.encode(value) }
end

-- The OMA requestError response for an error from codec/errors, with its
-- HTTP status (OMA NC 6.1.5.7, D.8).
function M.error(err, headers)
  return M.json(err.status, errors.body(err), headers)
end

-- 204: no body, and so no Content-Type (RFC 7230 3.3.3).
function M.no_content()
  return { status = 204, headers = {}, body = "" }
end

return M
