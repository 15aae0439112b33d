-- The representations of the Notification Channel resources: content
-- negotiation, reading request bodies and writing response bodies in JSON,
-- XML or (for requests) application/x-www-form-urlencoded, all checked
-- against the schema of nc/types.lua.
--
-- Every format meets in one normalised value (see nc/types.lua): a Lua table
-- keyed by the spec's element names, ints as integers, booleans as
-- booleans, every repeatable element a sequence, absent optional elements
-- nil, channelData without any type field.
--
-- Errors in input name the offending element by its path from the root
-- element, without the root and without indices, joined with ".":
-- "channelType", "channelData.maxNotifications",
-- "notificationChannel.channelData.maxNotifications". The root element
-- itself is named by its own name ("notificationChannel") when it is
-- missing, of the wrong kind or replaced by another root.
local errors = require("codec.errors")
local request = require("http.request")
local json = require("codec.json")
local notification = require("codec.notification")
local xml = require("codec.xml")
local types = require("nc.types")

local M = {}

M.JSON = "application/json"
M.XML = "application/xml"
M.FORM = "application/x-www-form-urlencoded"

local OFFERED = M.JSON .. ", " .. M.XML

-- xsd:int (XML Schema 2, 3.3.17): a 32-bit signed integer.
local INT_MIN, INT_MAX = -2147483648, 2147483647

---------------------------------------------------------------------------
-- Negotiation (RFC 7231 5.3.2)
---------------------------------------------------------------------------

-- The media ranges of an Accept value: { type, subtype, q } each, skipping
-- entries that are not ranges at all. A q that does not parse counts as 1,
-- as a client that writes "q=high" still wants the type.
local function parse_accept(value)
  local ranges = {}
  for entry in value:gmatch("[^,]+") do
    local media, params = entry:match("^%s*([^;%s]+)%s*(.*)$")
    local t, s = (media or ""):lower():match("^([%w%.%+%-!#$&^_*]+)/([%w%.%+%-!#$&^_*]+)$")
    if t and not (t == "*" and s ~= "*") then
      local q = 1
      for name, v in params:gmatch(";%s*([^=;%s]+)%s*=%s*([^;%s]*)") do
        if name:lower() == "q" then
          q = tonumber(v) or 1
        end
      end
      ranges[#ranges + 1] = { type = t, subtype = s, q = q }
    end
  end
  return ranges
end

-- The q a client gives the media type t/s: that of the most specific range
-- matching it (RFC 7231 5.3.2), 0 when none does.
local function quality(ranges, t, s)
  local best, best_rank = 0, -1
  for _, r in ipairs(ranges) do
    local rank
    if r.type == t and r.subtype == s then
      rank = 2
    elseif r.type == t and r.subtype == "*" then
      rank = 1
    elseif r.type == "*" then
      rank = 0
    end
    if rank and rank > best_rank then
      best, best_rank = r.q, rank
    end
  end
  return best
end

-- The response format for an Accept header: "json" or "xml", or nil and a
-- 406 SVC3003. JSON when the header is absent, blank, or holds no media
-- range at all; JSON too when both are equally acceptable (*/*,
-- application/*). XML answers both application/xml and text/xml.
function M.negotiate(accept)
  if type(accept) ~= "string" or not accept:find("%S") then
    return "json"
  end
  local ranges = parse_accept(accept)
  if #ranges == 0 then
    return "json"
  end
  local qj = quality(ranges, "application", "json")
  local qx = math.max(quality(ranges, "application", "xml"),
    quality(ranges, "text", "xml"))
  if qj <= 0 and qx <= 0 then
    return nil, errors.new("SVC3003", accept, OFFERED)
  end
  if qx > qj then
    return "xml"
  end
  return "json"
end

---------------------------------------------------------------------------
-- Scalars, shared by every input format
---------------------------------------------------------------------------

local function join(path, name)
  if path == nil or path == "" then
    return name
  end
  return path .. "." .. name
end

local function bad(path)
  return nil, errors.new("SVC0002", path)
end

-- XML Schema whitespace "collapse": every run of blanks becomes one space,
-- none at either end. Applies to every kind but xsd:string.
local function collapse(s)
  return (s:gsub("[ \t\r\n]+", " "):gsub("^ ", ""):gsub(" $", ""))
end

local function int_from_string(s)
  local digits = collapse(s):match("^[+-]?%d+$")
  if not digits then
    return nil
  end
  -- Long digit strings would overflow into floats; anything longer than
  -- eleven characters is out of xsd:int range anyway.
  if #digits > 11 then
    return nil
  end
  return math.tointeger(tonumber(digits))
end

-- Reads a scalar of `kind` from `v` (a string from XML or form input, or any
-- JSON value). Returns the normalised value, or nil and SVC0002 at `path`.
local function scalar(kind, v, path)
  local tv = type(v)
  if kind == "int" then
    local i
    if tv == "number" then
      i = math.tointeger(v)
    elseif tv == "string" then
      i = int_from_string(v)
    end
    if not i or i < INT_MIN or i > INT_MAX then
      return bad(path)
    end
    return i
  elseif kind == "boolean" then
    if tv == "boolean" then
      return v
    elseif tv == "string" then
      -- xsd:boolean's lexical space (XML Schema 2, 3.2.2).
      local s = collapse(v)
      if s == "true" or s == "1" then
        return true
      elseif s == "false" or s == "0" then
        return false
      end
    end
    return bad(path)
  end
  -- string, anyURI, dateTime. A JSON number where a string stands is read
  -- as its text: the OMA JSON rules make every XML value a string, and a
  -- client writing clientCorrelator: 123 means "123".
  if tv == "number" then
    local i = math.tointeger(v)
    v = i and string.format("%d", i) or json.encode(v)
  elseif tv ~= "string" then
    return bad(path)
  end
  -- Every value must be writable in both formats: valid UTF-8, and none of
  -- the control characters XML 1.0 (2.2) cannot carry even escaped.
  if not utf8.len(v) or v:find("[%z\1-\8\11\12\14-\31]") then
    return bad(path)
  end
  if kind ~= "string" then
    v = collapse(v)
  end
  return v
end
M._scalar = scalar

---------------------------------------------------------------------------
-- JSON input
---------------------------------------------------------------------------

local from_json_type

-- The fields of a type with channelType first: channelData's type depends
-- on it, in JSON and in XML alike. Worked out once per type, not per
-- request.
local ordered_fields = setmetatable({}, { __mode = "k" })
local function channel_type_first(fields)
  if ordered_fields[fields] then
    return ordered_fields[fields]
  end
  local ordered = {}
  for _, f in ipairs(fields) do
    if f.name == "channelType" then
      table.insert(ordered, 1, f)
    else
      ordered[#ordered + 1] = f
    end
  end
  ordered_fields[fields] = ordered
  return ordered
end

-- A JSON value for the element `f` at `path`: the normalised value or nil
-- and an error. `ctx` is the enclosing object (channelData reads its
-- sibling channelType).
local function from_json_element(f, v, path, ctx)
  local kind = f.kind
  if kind == "ChannelData" then
    kind = types.channel_data(ctx.channelType)
  end
  if types.is_scalar(kind) then
    return scalar(kind, v, path)
  end
  return from_json_type(kind, v, path)
end

-- A JSON object against the type `name`. `path` is the object's path ("" for
-- the root element), `label` what an error about the object itself names
-- (the root element's name for the root).
from_json_type = function(name, obj, path, label)
  if obj == json.null then
    obj = {}
  end
  if not json.is_object(obj) then
    return bad(label or path)
  end
  local fields = types.fields(name)
  local known = {}
  for _, f in ipairs(fields) do
    known[f.name] = true
  end
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
  for _, f in ipairs(channel_type_first(fields)) do
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
      -- An array, or (OMA JSON rules, Appendix D) a single item in its place.
      -- cjson gives [] and {} alike: an empty table is an empty list.
      local items = v
      if type(v) ~= "table" or (json.is_object(v) and next(v) ~= nil) then
        items = { v }
      end
      local list = {}
      for i, item in ipairs(items) do
        local value, err = from_json_element(f, item, p, out)
        if err then
          return nil, err
        end
        list[i] = value
      end
      out[f.name] = list
    else
      local value, err = from_json_element(f, v, p, out)
      if err then
        return nil, err
      end
      out[f.name] = value
    end
  end
  return out
end

-- Decodes JSON `text` whose root must be `root`.
local function decode_json(text, root)
  local doc, err = json.decode(text)
  if err then
    return nil, err
  end
  if not json.is_object(doc) then
    return bad(root)
  end
  local keys = {}
  for k in pairs(doc) do
    if k ~= root then
      keys[#keys + 1] = k
    end
  end
  if doc[root] == nil then
    return bad(root)
  end
  if #keys > 0 then
    table.sort(keys)
    return bad(keys[1])
  end
  local type_name = types.roots[root]
  if not type_name then
    error("unknown NC root element " .. tostring(root), 3)
  end
  if type_name == "NotificationList" then
    -- Its notifications are cut out of the text as sent (codec/notification):
    -- an array of one-key objects (D.13), an object of them (D.12), null
    -- (D.14).
    return notification.list_from_json(text)
  end
  return from_json_type(type_name, doc[root], "", root)
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
  elseif kind == "boolean" then
    if type(v) ~= "boolean" then
      error("element " .. path .. " must be a boolean, got " .. tostring(v), 0)
    end
    return v
  end
  if type(v) ~= "string" then
    error("element " .. path .. " must be a string, got " .. type(v), 0)
  end
  return v
end

local function to_json_element(f, v, path, ctx)
  local kind = f.kind
  if kind == "ChannelData" then
    kind = types.channel_data(ctx.channelType)
  end
  if types.is_scalar(kind) then
    return to_json_scalar(kind, v, path)
  end
  return to_json_type(kind, v, path)
end

-- The JSON (a codec/json value) of `value` of type `name`. A value that
-- does not fit the schema is a bug in the caller: it raises.
to_json_type = function(name, value, path)
  if type(value) ~= "table" then
    error("element " .. path .. " must be a table", 0)
  end
  local fields = types.fields(name)
  local known = {}
  for _, f in ipairs(fields) do
    known[f.name] = true
  end
  for k in pairs(value) do
    if not known[k] then
      error("element " .. join(path, tostring(k)) .. " is not in type " .. name, 0)
    end
  end
  local out = json.object()
  for _, f in ipairs(fields) do
    local v = value[f.name]
    local p = join(path, f.name)
    if f.repeatable then
      local list = json.array()
      for i, item in ipairs(v or {}) do
        list[i] = to_json_element(f, item, p, value)
      end
      out[f.name] = list
    elseif v ~= nil then
      out[f.name] = to_json_element(f, v, p, value)
    end
  end
  return out
end

local function encode_json(root, value)
  local type_name = types.roots[root]
  if not type_name then
    error("unknown NC root element " .. tostring(root), 3)
  end
  if type_name == "NotificationList" then
    return notification.list_to_json(value)
  end
  return json.encode({ [root] = to_json_type(type_name, value, root) })
end

---------------------------------------------------------------------------
-- XML input and output (OMA NC 5.2.1, section 6 examples)
---------------------------------------------------------------------------

local NC_NS = types.NAMESPACE
local COMMON_NS = "urn:oma:xml:rest:netapi:common:1"

-- True for attributes a schema element may carry besides its content:
-- namespace declarations and the xsi ones (type, nil, schemaLocation).
local function is_meta_attribute(node, a)
  if a.name == "xmlns" or a.name:sub(1, 6) == "xmlns:" then
    return true
  end
  local p = a.name:match("^([^:]+):")
  return p ~= nil and node.scope[p] == xml.XSI_NS
end

local from_xml_type

-- The concrete channel data type of a channelData element, checked
-- against its xsi:type (OMA NC 5.2.2.2: "the type is identified by the
-- xsi:type attribute"). A channelData without xsi:type is read as its
-- channelType says.
local function channel_data_type(node, channel_type, path)
  local type_name = types.channel_data(channel_type)
  local xsi_type = xml.attribute(node, xml.XSI_NS, "type")
  if xsi_type == nil then
    return type_name
  end
  local ns, localname = xml.resolve_qname(node, xsi_type)
  if ns ~= NC_NS or localname ~= tostring(channel_type) .. "Data" then
    return bad(path)
  end
  return type_name
end

local function from_xml_element(f, node, path, ctx)
  local kind = f.kind
  if kind == "ChannelData" then
    local err
    kind, err = channel_data_type(node, ctx.channelType, path)
    if not kind then
      return nil, err
    end
  end
  if types.is_scalar(kind) then
    if #xml.elements(node) > 0 then
      return bad(path)
    end
    for _, a in ipairs(node.attrs) do
      if not is_meta_attribute(node, a) then
        return bad(path)
      end
    end
    return scalar(kind, xml.text(node), path)
  end
  return from_xml_type(kind, node, path)
end

-- The element `node` against the type `name`; `path` and `label` as for
-- from_json_type. Child elements are unqualified (as in every example of
-- section 6); their order is not enforced.
from_xml_type = function(name, node, path, label)
  local fields = types.fields(name)
  local by_name = {}
  for _, f in ipairs(fields) do
    by_name[f.name] = f
  end
  local found = {}
  if types.attributes[name] then
    for _, a in ipairs(node.attrs) do
      if not is_meta_attribute(node, a) then
        if not by_name[a.name] then
          return bad(join(path, a.name))
        end
        found[a.name] = { a.value }
      end
    end
  else
    for _, a in ipairs(node.attrs) do
      if not is_meta_attribute(node, a) then
        return bad(join(path, a.name))
      end
    end
  end
  for _, c in ipairs(node.children) do
    if type(c) == "string" then
      if c:find("%S") then
        return bad(label or path)
      end
    else
      local f = by_name[c.localname]
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
  for _, f in ipairs(channel_type_first(fields)) do
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
        local v, err
        if type(item) == "string" then -- an attribute value
          v, err = scalar(f.kind, item, p)
        else
          v, err = from_xml_element(f, item, p, out)
        end
        if err then
          return nil, err
        end
        values[i] = v
      end
      if f.repeatable then
        out[f.name] = values
      else
        out[f.name] = values[1]
      end
    end
  end
  return out
end

-- The notificationList root: its ncListComplete, and every other child
-- element a notification of some enabler, kept as standalone XML text.
local function notification_list_from_xml(node)
  local out = { notifications = {} }
  for _, c in ipairs(node.children) do
    if type(c) == "string" then
      if c:find("%S") then
        return bad("notificationList")
      end
    elseif c.localname == "ncListComplete" and c.ns == nil then
      local v, err = scalar("boolean", xml.text(c), "notificationList.ncListComplete")
      if err then
        return nil, err
      end
      out.ncListComplete = v
    else
      out.notifications[#out.notifications + 1] = { root = c.localname,
        format = "xml", body = xml.serialize(c) }
    end
  end
  return out
end

local function decode_xml(text, root)
  local node, err = xml.parse(text)
  if not node then
    return nil, err
  end
  if node.localname ~= root or node.ns ~= NC_NS then
    return bad(root)
  end
  local type_name = types.roots[root]
  if type_name == "NotificationList" then
    return notification_list_from_xml(node)
  end
  return from_xml_type(type_name, node, "", root)
end

local to_xml_type

local function to_xml_scalar(kind, v, path)
  v = to_json_scalar(kind, v, path)
  if kind == "int" then
    return string.format("%d", v)
  elseif kind == "boolean" then
    return v and "true" or "false"
  end
  return v
end

-- Appends to `out` the children of `value` of type `name`, in schema order.
to_xml_type = function(out, name, value, path)
  if type(value) ~= "table" then
    error("element " .. path .. " must be a table", 0)
  end
  local fields = types.fields(name)
  local known = {}
  for _, f in ipairs(fields) do
    known[f.name] = true
  end
  for k in pairs(value) do
    if not known[k] then
      error("element " .. join(path, tostring(k)) .. " is not in type " .. name, 0)
    end
  end
  for _, f in ipairs(fields) do
    local v = value[f.name]
    local p = join(path, f.name)
    local items = v
    if not f.repeatable then
      items = { v }
    end
    for _, item in ipairs(items or {}) do
      local kind = f.kind
      local attrs = ""
      if kind == "ChannelData" then
        local concrete, known_type = types.channel_data(value.channelType)
        kind = concrete
        if known_type then
          attrs = ' xsi:type="' .. types.PREFIX .. ":" .. concrete .. '"'
        end
      end
      if types.is_scalar(kind) then
        out[#out + 1] = "<" .. f.name .. attrs .. ">"
          .. xml.escape(to_xml_scalar(kind, item, p)) .. "</" .. f.name .. ">"
      elseif types.attributes[kind] then
        out[#out + 1] = "<" .. f.name
        for _, af in ipairs(types.fields(kind)) do
          if item[af.name] ~= nil then
            out[#out + 1] = " " .. af.name .. '="'
              .. xml.escape_attr(to_xml_scalar(af.kind, item[af.name], join(p, af.name))) .. '"'
          end
        end
        out[#out + 1] = "/>"
      else
        out[#out + 1] = "<" .. f.name .. attrs .. ">"
        to_xml_type(out, kind, item, p)
        out[#out + 1] = "</" .. f.name .. ">"
      end
    end
  end
end

local ROOT_DECLS = ' xmlns:' .. types.PREFIX .. '="' .. NC_NS .. '" xmlns:xsi="'
  .. xml.XSI_NS .. '"'

local function encode_xml(root, value)
  local type_name = types.roots[root]
  if not type_name then
    error("unknown NC root element " .. tostring(root), 3)
  end
  local tag = types.PREFIX .. ":" .. root
  local out = { xml.DECLARATION, "<", tag, ROOT_DECLS, ">" }
  if type_name == "NotificationList" then
    for _, item in ipairs(value.notifications or {}) do
      out[#out + 1] = notification.to_xml(item)
    end
    if value.ncListComplete ~= nil then
      out[#out + 1] = "<ncListComplete>" .. tostring(value.ncListComplete == true)
        .. "</ncListComplete>"
    end
  else
    to_xml_type(out, type_name, value, root)
  end
  out[#out + 1] = "</" .. tag .. ">"
  return table.concat(out)
end

-- OMA NC 6.1.5.4.2 and 6.1.5.7.2: requestError in the common namespace,
-- its exception unqualified, one <variables> per variable.
local function xml_error_body(err)
  local out = { xml.DECLARATION,
    '<common:requestError xmlns:common="', COMMON_NS, '">',
    "<", err.kind, ">",
    "<messageId>", xml.escape(err.id), "</messageId>",
    "<text>", xml.escape(err.text), "</text>" }
  for _, v in ipairs(err.variables) do
    out[#out + 1] = "<variables>" .. xml.escape(v) .. "</variables>"
  end
  out[#out + 1] = "</" .. err.kind .. "></common:requestError>"
  return table.concat(out)
end

---------------------------------------------------------------------------
-- Requests
---------------------------------------------------------------------------

-- The empty value of a root: what an empty body means where one is allowed.
local function empty_value(root)
  if types.roots[root] == "NotificationList" then
    return { notifications = {} }
  end
  return {}
end

-- Decodes the body of `req` as the root element `root`; see the header of
-- this file and nc/types.lua for the value. opts (optional):
--   form = true         also accept application/x-www-form-urlencoded
--                       (OMA NC Appendix C: channel creation and long poll)
--   allow_empty = true  an empty body gives the empty value instead of
--                       SVC0002 naming the root. Always the case for
--                       longPollingRequestParameters, an empty type (C.2:
--                       "an empty string in this version").
function M.decode(req, root, opts)
  opts = opts or {}
  if not types.roots[root] then
    error("unknown NC root element " .. tostring(root), 2)
  end
  local body = req.body or ""
  local content_type = req.headers and req.headers["content-type"]
  if not body:find("%S") then
    if opts.allow_empty or root == "longPollingRequestParameters" then
      return empty_value(root)
    end
    return bad(root)
  end
  local media = request.media_type(content_type)
  if media == M.JSON then
    return decode_json(body, root)
  elseif media == M.XML or media == "text/xml" then
    return decode_xml(body, root)
  elseif media == M.FORM and opts.form then
    return require("codec.form").decode(body, root)
  end
  local accepted = OFFERED .. (opts.form and (", " .. M.FORM) or "")
  return nil, errors.new("SVC3002", content_type or "(none)", accepted)
end

---------------------------------------------------------------------------
-- Responses
---------------------------------------------------------------------------

-- The body of `value` (the root element `root`) in `format` ("json" or
-- "xml"), and its Content-Type. Raises when the value does not fit the
-- schema: that is a bug in the caller, not in the client.
function M.encode(format, root, value)
  if format == "xml" then
    return encode_xml(root, value), M.XML
  elseif format == "json" or format == nil then
    return encode_json(root, value), M.JSON
  end
  error("unknown format " .. tostring(format), 2)
end

local function with_headers(extra, content_type)
  local h = {}
  for name, v in pairs(extra or {}) do
    h[name] = v
  end
  if content_type then
    h["Content-Type"] = content_type
  end
  -- The body depends on Accept, so caches must key on it (RFC 7231 7.1.4).
  local vary = h["Vary"]
  if vary == nil then
    h["Vary"] = "Accept"
  elseif not vary:lower():find("accept", 1, true) then
    h["Vary"] = vary .. ", Accept"
  end
  return h
end

-- A response holding `value` as the root element `root` in `format`.
function M.response(status, format, root, value, extra_headers)
  local body, content_type = M.encode(format, root, value)
  return { status = status, headers = with_headers(extra_headers, content_type),
    body = body }
end

-- The requestError response for an error of codec/errors in `format`
-- (JSON when nil): OMA NC 6.1.5.7 (XML) and D.8 (JSON).
function M.error_response(err, format, extra_headers)
  local body, content_type
  if format == "xml" then
    body, content_type = xml_error_body(err), M.XML
  else
    body, content_type = json.encode(errors.body(err)), M.JSON
  end
  return { status = err.status, headers = with_headers(extra_headers, content_type),
    body = body }
end


return M
