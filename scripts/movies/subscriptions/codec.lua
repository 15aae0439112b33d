-- The representations of the movie subscription resources in JSON and
-- XML, checked against movies/subscriptions/types.lua.
--
-- The same rules as the Notification Channel API (API.md 2), with the same
-- building blocks: content negotiation, scalar reading and requestError
-- bodies are codec/representation's; JSON and XML text is codec/json's and
-- codec/xml's. Only the walk over the schema is repeated here, because
-- codec/representation's walk is bound to nc/types.lua and its namespace.
--
-- The normalised value is a Lua table keyed by element names, ints as
-- integers, every repeatable element a sequence (possibly empty), absent
-- optional elements nil. Errors in input name the offending element by
-- its path below the root, joined with "." ("callbackReference.notifyURL",
-- "filter.movieId"); the root itself by its own name.
--
-- JSON (the structure-aware OMA JSON rules): {"movieSubscription": {...}};
-- on input numbers or numeric strings, and a single value where an array
-- may stand. XML: <mv:movieSubscription xmlns:mv="urn:ncserver:xml:movies:1">
-- with unqualified children in schema order.
local errors = require("codec.errors")
local json = require("codec.json")
local rep = require("codec.representation")
local xml = require("codec.xml")
local request = require("http.request")
local types = require("movies.subscriptions.types")

local M = {}

M.JSON = rep.JSON
M.XML = rep.XML

local ACCEPTED = M.JSON .. ", " .. M.XML
local NS = types.NAMESPACE
local scalar = rep._scalar

-- The response format for an Accept header ("json" or "xml"), or nil and
-- the 406 error: the channel API's negotiation, unchanged.
M.negotiate = rep.negotiate

-- The requestError response for `err` in `format`: the channel API's.
M.error_response = rep.error_response

local function join(path, name)
  if path == nil or path == "" then
    return name
  end
  return path .. "." .. name
end

local function bad(path)
  return nil, errors.new("SVC0002", path)
end

-- The elements of `name` by element name.
local function by_name(name)
  local fields = types.fields(name)
  local t = {}
  for _, f in ipairs(fields) do
    t[f.name] = f
  end
  return fields, t
end

---------------------------------------------------------------------------
-- JSON input
---------------------------------------------------------------------------

local from_json_type

local function from_json_element(f, v, path)
  if types.is_scalar(f.kind) then
    return scalar(f.kind, v, path)
  end
  return from_json_type(f.kind, v, path)
end

-- A JSON object against the type `name`; `label` is what an error about
-- the object itself names (the root element's name for the root).
from_json_type = function(name, obj, path, label)
  if obj == json.null then
    obj = {}
  end
  if not json.is_object(obj) then
    return bad(label or path)
  end
  local fields, known = by_name(name)
  local unknown = {}
  for k in pairs(obj) do
    if not known[k] then
      unknown[#unknown + 1] = tostring(k)
    end
  end
  if #unknown > 0 then
    -- Name one, the same one each time for the same input.
    table.sort(unknown)
    return bad(join(path, unknown[1]))
  end
  local out = {}
  for _, f in ipairs(fields) do
    local v = obj[f.name]
    local p = join(path, f.name)
    if v == nil or v == json.null then
      if f.required then
        return bad(p)
      end
      if f.repeatable then
        out[f.name] = {}
      end
    elseif f.repeatable then
      -- An array, or a single item in its place. cjson gives [] and {}
      -- alike: an empty table is an empty list.
      local items = v
      if type(v) ~= "table" or (json.is_object(v) and next(v) ~= nil) then
        items = { v }
      end
      local list = {}
      for i, item in ipairs(items) do
        local value, err = from_json_element(f, item, p)
        if err then
          return nil, err
        end
        list[i] = value
      end
      out[f.name] = list
    else
      local value, err = from_json_element(f, v, p)
      if err then
        return nil, err
      end
      out[f.name] = value
    end
  end
  return out
end

local function decode_json(text, root)
  local doc, err = json.decode(text)
  if err then
    return nil, err
  end
  if not json.is_object(doc) or doc[root] == nil then
    return bad(root)
  end
  local keys = {}
  for k in pairs(doc) do
    if k ~= root then
      keys[#keys + 1] = k
    end
  end
  if #keys > 0 then
    table.sort(keys)
    return bad(keys[1])
  end
  return from_json_type(types.roots[root], doc[root], "", root)
end

---------------------------------------------------------------------------
-- JSON output
---------------------------------------------------------------------------

local to_json_type

local function to_json_scalar(kind, v, path)
  if kind == "int" then
    local i = math.type(v) and math.tointeger(v)
    if not i then
      error("element " .. path .. " must be an integer, got " .. tostring(v), 0)
    end
    return i
  end
  if type(v) ~= "string" then
    error("element " .. path .. " must be a string, got " .. type(v), 0)
  end
  return v
end

local function to_json_element(f, v, path)
  if types.is_scalar(f.kind) then
    return to_json_scalar(f.kind, v, path)
  end
  return to_json_type(f.kind, v, path)
end

-- Raises when `value` holds a key its type does not have: a bug in the
-- caller, not in the client.
local function check_keys(name, value, path)
  if type(value) ~= "table" then
    error("element " .. path .. " must be a table", 0)
  end
  local _, known = by_name(name)
  for k in pairs(value) do
    if not known[k] then
      error("element " .. join(path, tostring(k)) .. " is not in type " .. name, 0)
    end
  end
end

to_json_type = function(name, value, path)
  check_keys(name, value, path)
  local out = json.object()
  for _, f in ipairs(types.fields(name)) do
    local v = value[f.name]
    local p = join(path, f.name)
    if f.repeatable then
      -- API.md 2: an element that may repeat is always an array.
      local list = json.array()
      for i, item in ipairs(v or {}) do
        list[i] = to_json_element(f, item, p)
      end
      out[f.name] = list
    elseif v ~= nil then
      out[f.name] = to_json_element(f, v, p)
    end
  end
  return out
end

local function encode_json(root, value)
  return json.encode({ [root] = to_json_type(types.roots[root], value, root) })
end

---------------------------------------------------------------------------
-- XML input
---------------------------------------------------------------------------

-- Namespace declarations and xsi attributes (xsi:schemaLocation, ...)
-- may stand on any element; no element of ours has other attributes.
local function is_meta_attribute(node, a)
  if a.name == "xmlns" or a.name:sub(1, 6) == "xmlns:" then
    return true
  end
  local p = a.name:match("^([^:]+):")
  return p ~= nil and node.scope[p] == xml.XSI_NS
end

local from_xml_type

local function from_xml_element(f, node, path)
  if types.is_scalar(f.kind) then
    if #xml.elements(node) > 0 then
      return bad(path)
    end
    for _, a in ipairs(node.attrs) do
      if not is_meta_attribute(node, a) then
        return bad(path)
      end
    end
    return scalar(f.kind, xml.text(node), path)
  end
  return from_xml_type(f.kind, node, path)
end

-- The element `node` against the type `name`. Children must be
-- unqualified; their order is not enforced.
from_xml_type = function(name, node, path, label)
  local fields, known = by_name(name)
  for _, a in ipairs(node.attrs) do
    if not is_meta_attribute(node, a) then
      return bad(join(path, a.name))
    end
  end
  local found = {}
  for _, c in ipairs(node.children) do
    if type(c) == "string" then
      if c:find("%S") then
        return bad(label or path)
      end
    else
      local f = known[c.localname]
      if not f or c.ns ~= nil then
        return bad(join(path, c.localname))
      end
      local list = found[f.name]
      if not list then
        list = {}
        found[f.name] = list
      elseif not f.repeatable then
        return bad(join(path, f.name))
      end
      list[#list + 1] = c
    end
  end
  local out = {}
  for _, f in ipairs(fields) do
    local list = found[f.name]
    local p = join(path, f.name)
    if not list then
      if f.required then
        return bad(p)
      end
      if f.repeatable then
        out[f.name] = {}
      end
    else
      local values = {}
      for i, item in ipairs(list) do
        local v, err = from_xml_element(f, item, p)
        if err then
          return nil, err
        end
        values[i] = v
      end
      out[f.name] = f.repeatable and values or values[1]
    end
  end
  return out
end

local function decode_xml(text, root)
  local node, err = xml.parse(text)
  if not node then
    return nil, err
  end
  if node.localname ~= root or node.ns ~= NS then
    return bad(root)
  end
  return from_xml_type(types.roots[root], node, "", root)
end

---------------------------------------------------------------------------
-- XML output
---------------------------------------------------------------------------

local function to_xml_type(out, name, value, path)
  check_keys(name, value, path)
  for _, f in ipairs(types.fields(name)) do
    local v = value[f.name]
    local p = join(path, f.name)
    local items = v
    if not f.repeatable then
      items = { v }
    end
    for _, item in ipairs(items or {}) do
      if types.is_scalar(f.kind) then
        local s = to_json_scalar(f.kind, item, p)
        if f.kind == "int" then
          s = string.format("%d", s)
        end
        out[#out + 1] = "<" .. f.name .. ">" .. xml.escape(s) .. "</" .. f.name .. ">"
      else
        out[#out + 1] = "<" .. f.name .. ">"
        to_xml_type(out, f.kind, item, p)
        out[#out + 1] = "</" .. f.name .. ">"
      end
    end
  end
end

local function encode_xml(root, value)
  local tag = types.PREFIX .. ":" .. root
  local out = { xml.DECLARATION, "<", tag, ' xmlns:', types.PREFIX, '="', NS, '">' }
  to_xml_type(out, types.roots[root], value, root)
  out[#out + 1] = "</" .. tag .. ">"
  return table.concat(out)
end

---------------------------------------------------------------------------
-- Requests and responses
---------------------------------------------------------------------------

local function check_root(root, level)
  if not types.roots[root] then
    error("unknown movie subscription root element " .. tostring(root), level + 1)
  end
end

-- Decodes the body of `req` as the root element `root`. Returns the
-- normalised value, or nil and the error to answer:
--   400 SVC0002 naming the root for an empty body (whatever its type);
--   415 SVC3002 for a Content-Type other than JSON or XML;
--   400 SVC0002 naming the element at fault;
--   400 SVC0001 for a body that is not JSON or XML at all.
function M.decode(req, root)
  check_root(root, 2)
  local body = req.body or ""
  local content_type = req.headers and req.headers["content-type"]
  -- An empty body is a missing document whatever it claims to be, as
  -- for the channel API (codec/representation.decode).
  if not body:find("%S") then
    return bad(root)
  end
  local media = request.media_type(content_type)
  if media ~= M.JSON and media ~= M.XML and media ~= "text/xml" then
    return nil, errors.new("SVC3002", content_type or "(none)", ACCEPTED)
  end
  if media == M.JSON then
    return decode_json(body, root)
  end
  return decode_xml(body, root)
end

-- The body of `value` as the root element `root` in `format` ("json" or
-- "xml") and its Content-Type. Raises when the value does not fit the
-- schema: that is a bug in the caller.
function M.encode(format, root, value)
  check_root(root, 2)
  if format == "xml" then
    return encode_xml(root, value), M.XML
  elseif format == "json" or format == nil then
    return encode_json(root, value), M.JSON
  end
  error("unknown format " .. tostring(format), 2)
end

-- A response holding `value` as `root` in `format`, with Vary: Accept
-- (the body depends on it, RFC 7231 7.1.4) and any `extra_headers`.
function M.response(status, format, root, value, extra_headers)
  local body, content_type = M.encode(format, root, value)
  local headers = { ["Content-Type"] = content_type, Vary = "Accept" }
  for k, v in pairs(extra_headers or {}) do
    headers[k] = v
  end
  return { status = status, headers = headers, body = body }
end

return M
