-- Reading what a request carries: its media type and its JSON body.
local errors = require("codec.errors")
local json = require("codec.json")

local M = {}

local JSON = "application/json"

-- The media type of a Content-Type value, lower-cased and without
-- parameters ("Application/JSON; charset=utf-8" -> "application/json"),
-- or nil when absent or blank.
function M.media_type(value)
  if type(value) ~= "string" then
    return nil
  end
  local media = value:match("^%s*([^;%s]+)")
  return media and media:lower()
end

-- The decoded JSON object of the request body. Fails with
--   415 SVC3002 when Content-Type is not application/json (any parameters,
--       e.g. charset, are accepted: JSON is UTF-8 whatever they say);
--   400 SVC0002 naming `part` when the body is empty or its root is not an
--       object (the document the client had to send is missing);
--   400 SVC0001 when the body is not JSON at all (API.md 2);
--   400 SVC0002 naming a key that appears twice in one object.
function M.json_object(req, part)
  local content_type = req.headers and req.headers["content-type"]
  if M.media_type(content_type) ~= JSON then
    return nil, errors.new("SVC3002", content_type or "(none)", JSON)
  end
  local body = req.body or ""
  if not body:find("%S") then
    return nil, errors.new("SVC0002", part)
  end
  local doc, err = json.decode_object(body, part)
  if not doc then
    return nil, err
  end
  -- cjson keeps the last of two equal keys in silence.
  local twice = json.duplicate_key(body)
  if twice then
    return nil, errors.new("SVC0002", twice)
  end
  return doc
end

return M
