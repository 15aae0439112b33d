-- The representations of resources in JSON, XML and (for requests, where
-- a schema offers it) application/x-www-form-urlencoded: content
-- negotiation, reading request bodies and writing response bodies, all
-- checked against a schema.
--
-- The walk over the schema is one, whatever the schema: M.new(types) gives
-- a codec for a types module (nc/types.lua for the Notification Channel,
-- movies/subscriptions/types.lua for the movies API), which provides
--
--   NAMESPACE, PREFIX  the XML namespace of the root element and the
--                      prefix written for it (children are unqualified)
--   roots              root element name -> type name
--   fields(name)       the elements of a type, in XML sequence order:
--                      { name, kind, required, repeatable, nillable }
--                      (nillable: JSON null <-> xsi:nil="true", kept in
--                      the value as codec/json's null; never repeatable)
--   is_scalar(kind)    true for "string", "int", ... (see scalar below)
--   attributes         (optional) type name -> true for types whose
--                      elements XML carries as attributes (common:Link)
--
-- and, optionally, hooks for what a plain walk cannot do (the NC schema
-- uses them all; nc/types.lua says why):
--
--   DECLARE_XSI        true: every root declares the xsi prefix; else only
--                      a document that writes xsi:nil does
--   abstract           type name -> { discriminator, concrete(v),
--                      xsi_name(v) }: an element of that kind has the type
--                      concrete(v) returns (name, known), v being the value
--                      of its sibling `discriminator` (read first); in XML
--                      its xsi:type, when present, must name xsi_name(v)
--                      in NAMESPACE, and is written when `known`
--   opaque             type name -> { from_json(text), from_xml(node),
--                      to_json(value) -> text, to_xml(value) -> children,
--                      empty() }: roots read and written by other code
--   may_be_empty       root name -> true: an empty body is the empty value
--   decode_form(body, root)  reads a form body (opts.form of decode)
--
-- Every format meets in one normalised value: a Lua table keyed by the
-- schema's element names, ints as integers, booleans as booleans, every
-- repeatable element a sequence, absent optional elements nil.
--
-- Errors in input name the offending element by its path from the root
-- element, without the root and without indices, joined with ".":
-- "channelType", "channelData.maxNotifications",
-- "notificationChannel.channelData.maxNotifications". The root element
-- itself is named by its own name ("notificationChannel") when it is
-- missing, of the wrong kind or replaced by another root.
--
-- This module's own decode, encode and response are those of the
-- Notification Channel codec (M.new(nc/types.lua)), which nc/ calls.
local errors = require("codec.errors")
local request = require("http.request")
local json = require("codec.json")
local xml = require("codec.xml")

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
-- "int" (xsd:int) and "boolean" are typed; every other kind ("string",
-- "anyURI", "date", "dateTime", ...) is text, whitespace-collapsed unless
-- it is "string". codec/form and codec/notification read with it too.
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
  -- Text kinds. A JSON number where a string stands is read
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
M.scalar = scalar

---------------------------------------------------------------------------
-- The schema
---------------------------------------------------------------------------

local function root_type(S, root, level)
  local type_name = S.roots[root]
  if not type_name then
    error("unknown root element " .. tostring(root) .. " of " .. tostring(S.NAMESPACE),
      level + 1)
  end
  return type_name
end

-- The hook of an abstract kind, or nil.
local function abstract_of(S, kind)
  return S.abstract and S.abstract[kind]
end

-- The fields of a type with the discriminators of its abstract elements
-- first (NC: channelType before channelData), since their type depends on
-- them in JSON and in XML alike. Worked out once per type, not per
-- request.
local ordered_fields = setmetatable({}, { __mode = "k" })
local function read_order(S, fields)
  local ordered = ordered_fields[fields]
  if ordered then
    return ordered
  end
  local first = {}
  for _, f in ipairs(fields) do
    local a = abstract_of(S, f.kind)
    if a then
      first[a.discriminator] = true
    end
  end
  ordered = {}
  for _, f in ipairs(fields) do
    if first[f.name] then
      ordered[#ordered + 1] = f
    end
  end
  for _, f in ipairs(fields) do
    if not first[f.name] then
      ordered[#ordered + 1] = f
    end
  end
  ordered_fields[fields] = ordered
  return ordered
end

-- The fields of a type by element name.
local fields_by_name = setmetatable({}, { __mode = "k" })
local function by_name(fields)
  local t = fields_by_name[fields]
  if not t then
    t = {}
    for _, f in ipairs(fields) do
      t[f.name] = f
    end
    fields_by_name[fields] = t
  end
  return t
end

-- The kind an element of field `f` has among `siblings` (the values of
-- the other elements of its parent): its own, or for an abstract kind the
-- concrete type, with the hook and whether the type is a known one.
local function kind_of(S, f, siblings)
  local a = abstract_of(S, f.kind)
  if not a then
    return f.kind
  end
  local kind, known = a.concrete(siblings[a.discriminator])
  return kind, a, known
end

---------------------------------------------------------------------------
-- JSON input
---------------------------------------------------------------------------

local from_json_type

-- A JSON value for the element `f` at `path`: the normalised value or nil
-- and an error. `siblings` is the enclosing object read so far.
local function from_json_element(S, f, v, path, siblings)
  local kind = kind_of(S, f, siblings)
  if S.is_scalar(kind) then
    return scalar(kind, v, path)
  end
  return from_json_type(S, kind, v, path)
end

-- A JSON object against the type `name`. `path` is the object's path ("" for
-- the root element), `label` what an error about the object itself names
-- (the root element's name for the root).
from_json_type = function(S, name, obj, path, label)
  if obj == json.null then
    obj = {}
  end
  if not json.is_object(obj) then
    return bad(label or path)
  end
  local fields = S.fields(name)
  local known = by_name(fields)
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
  for _, f in ipairs(read_order(S, fields)) do
    local v = obj[f.name]
    local p = join(path, f.name)
    if v == json.null and f.nillable then
      out[f.name] = json.null
    elseif v == nil or v == json.null then
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
        local value, err = from_json_element(S, f, item, p, out)
        if err then
          return nil, err
        end
        list[i] = value
      end
      out[f.name] = list
    else
      local value, err = from_json_element(S, f, v, p, out)
      if err then
        return nil, err
      end
      out[f.name] = value
    end
  end
  return out
end

-- Decodes JSON `text` whose root must be `root`.
local function decode_json(S, text, root)
  local doc, parsed = json.decode_text(text)
  if doc == nil then
    return nil, parsed
  end
  -- An opaque root rescans the text, so it gets what cjson parsed: without
  -- a leading byte order mark or trailing commas (codec/json).
  text = parsed
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
  local type_name = root_type(S, root, 2)
  local opaque = S.opaque and S.opaque[type_name]
  if opaque then
    return opaque.from_json(text)
  end
  return from_json_type(S, type_name, doc[root], "", root)
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

local function to_json_element(S, f, v, path, siblings)
  if v == json.null and f.nillable then
    return json.null
  end
  local kind = kind_of(S, f, siblings)
  if S.is_scalar(kind) then
    return to_json_scalar(kind, v, path)
  end
  return to_json_type(S, kind, v, path)
end

-- Raises unless `value` is a table holding only elements of type `name`.
local function check_keys(S, name, value, path)
  if type(value) ~= "table" then
    error("element " .. path .. " must be a table", 0)
  end
  local known = by_name(S.fields(name))
  for k in pairs(value) do
    if not known[k] then
      error("element " .. join(path, tostring(k)) .. " is not in type " .. name, 0)
    end
  end
end

-- The JSON (a codec/json value) of `value` of type `name`. A value that
-- does not fit the schema is a bug in the caller: it raises.
to_json_type = function(S, name, value, path)
  check_keys(S, name, value, path)
  local out = json.object()
  for _, f in ipairs(S.fields(name)) do
    local v = value[f.name]
    local p = join(path, f.name)
    if f.repeatable then
      -- API.md 2: an element that may repeat is always an array.
      local list = json.array()
      for i, item in ipairs(v or {}) do
        list[i] = to_json_element(S, f, item, p, value)
      end
      out[f.name] = list
    elseif v ~= nil then
      out[f.name] = to_json_element(S, f, v, p, value)
    end
  end
  return out
end

local function encode_json(S, root, value)
  local type_name = root_type(S, root, 3)
  local opaque = S.opaque and S.opaque[type_name]
  if opaque then
    return opaque.to_json(value)
  end
  return json.encode({ [root] = to_json_type(S, type_name, value, root) })
end

---------------------------------------------------------------------------
-- XML input and output (OMA NC 5.2.1, section 6 examples)
---------------------------------------------------------------------------

-- True for attributes a schema element may carry besides its content:
-- namespace declarations and the xsi ones (type, nil, schemaLocation).
local function is_meta_attribute(node, a)
  if a.name == "xmlns" or a.name:sub(1, 6) == "xmlns:" then
    return true
  end
  local p = a.name:match("^([^:]+):")
  return p ~= nil and node.scope[p] == xml.XSI_NS
end

-- True when `node` says xsi:nil="true" (XML Schema 1, 2.6.2).
local function is_nil(node)
  local v = xml.attribute(node, xml.XSI_NS, "nil")
  if v == nil then
    return false
  end
  v = collapse(v)
  return v == "true" or v == "1"
end

local from_xml_type

-- The concrete type of an element of abstract kind (hook `a`), checked
-- against its xsi:type (OMA NC 5.2.2.2: "the type is identified by the
-- xsi:type attribute"). Without xsi:type it is what the discriminator
-- says.
local function concrete_type(S, a, node, siblings, path)
  local disc = siblings[a.discriminator]
  local type_name = a.concrete(disc)
  local xsi_type = xml.attribute(node, xml.XSI_NS, "type")
  if xsi_type == nil then
    return type_name
  end
  local ns, localname = xml.resolve_qname(node, xsi_type)
  if ns ~= S.NAMESPACE or localname ~= a.xsi_name(disc) then
    return bad(path)
  end
  return type_name
end

local function from_xml_element(S, f, node, path, siblings)
  local kind = f.kind
  local a = abstract_of(S, kind)
  if a then
    local err
    kind, err = concrete_type(S, a, node, siblings, path)
    if not kind then
      return nil, err
    end
  end
  if f.nillable and is_nil(node) then
    -- A nil element has no content (XML Schema 1, 3.3.4).
    if #xml.elements(node) > 0 or xml.text(node):find("%S") then
      return bad(path)
    end
    return json.null
  end
  if S.is_scalar(kind) then
    if #xml.elements(node) > 0 then
      return bad(path)
    end
    for _, at in ipairs(node.attrs) do
      if not is_meta_attribute(node, at) then
        return bad(path)
      end
    end
    return scalar(kind, xml.text(node), path)
  end
  return from_xml_type(S, kind, node, path)
end

-- The element `node` against the type `name`; `path` and `label` as for
-- from_json_type. Child elements are unqualified (as in every example of
-- OMA NC section 6); their order is not enforced.
from_xml_type = function(S, name, node, path, label)
  local fields = S.fields(name)
  local known = by_name(fields)
  local found = {}
  local as_attributes = S.attributes and S.attributes[name]
  for _, at in ipairs(node.attrs) do
    if not is_meta_attribute(node, at) then
      if not (as_attributes and known[at.name]) then
        return bad(join(path, at.name))
      end
      found[at.name] = { at.value }
    end
  end
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
  for _, f in ipairs(read_order(S, fields)) do
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
          v, err = from_xml_element(S, f, item, p, out)
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

-- The root element `node` as the root `root`.
local function from_xml_root(S, node, root)
  if node.localname ~= root or node.ns ~= S.NAMESPACE then
    return bad(root)
  end
  local type_name = root_type(S, root, 3)
  local opaque = S.opaque and S.opaque[type_name]
  if opaque then
    return opaque.from_xml(node)
  end
  return from_xml_type(S, type_name, node, "", root)
end

local function decode_xml(S, text, root)
  local node, err = xml.parse(text)
  if not node then
    return nil, err
  end
  return from_xml_root(S, node, root)
end

local function to_xml_scalar(kind, v, path)
  v = to_json_scalar(kind, v, path)
  if kind == "int" then
    return string.format("%d", v)
  elseif kind == "boolean" then
    return v and "true" or "false"
  end
  return v
end

-- Appends to `out` the children of `value` of type `name`, in schema
-- order. Sets st.xsi when it writes an xsi attribute.
local function to_xml_type(S, out, name, value, path, st)
  check_keys(S, name, value, path)
  for _, f in ipairs(S.fields(name)) do
    local v = value[f.name]
    local p = join(path, f.name)
    local items = v
    if not f.repeatable then
      items = { v }
    end
    for _, item in ipairs(items or {}) do
      local kind, a, known = kind_of(S, f, value)
      local attrs = ""
      if a and known then
        attrs = ' xsi:type="' .. S.PREFIX .. ":" .. a.xsi_name(value[a.discriminator]) .. '"'
        st.xsi = true
      end
      if item == json.null and f.nillable then
        out[#out + 1] = "<" .. f.name .. ' xsi:nil="true"/>'
        st.xsi = true
      elseif S.is_scalar(kind) then
        out[#out + 1] = "<" .. f.name .. attrs .. ">"
          .. xml.escape(to_xml_scalar(kind, item, p)) .. "</" .. f.name .. ">"
      elseif S.attributes and S.attributes[kind] then
        check_keys(S, kind, item, p)
        out[#out + 1] = "<" .. f.name
        for _, af in ipairs(S.fields(kind)) do
          if item[af.name] ~= nil then
            out[#out + 1] = " " .. af.name .. '="'
              .. xml.escape_attr(to_xml_scalar(af.kind, item[af.name], join(p, af.name))) .. '"'
          end
        end
        out[#out + 1] = "/>"
      else
        out[#out + 1] = "<" .. f.name .. attrs .. ">"
        to_xml_type(S, out, kind, item, p, st)
        out[#out + 1] = "</" .. f.name .. ">"
      end
    end
  end
end

local XSI_DECL = ' xmlns:xsi="' .. xml.XSI_NS .. '"'

-- The root element `root` holding `value`, without an XML declaration:
-- <prefix:root xmlns:prefix="NAMESPACE" [xmlns:xsi="..."]>...</prefix:root>.
local function xml_element(S, root, value)
  local type_name = root_type(S, root, 3)
  local opaque = S.opaque and S.opaque[type_name]
  local st = { xsi = false }
  local body
  if opaque then
    body = opaque.to_xml(value)
  else
    local out = {}
    to_xml_type(S, out, type_name, value, root, st)
    body = table.concat(out)
  end
  local tag = S.PREFIX .. ":" .. root
  return "<" .. tag .. " xmlns:" .. S.PREFIX .. '="' .. xml.escape_attr(S.NAMESPACE) .. '"'
    .. ((S.DECLARE_XSI or st.xsi) and XSI_DECL or "") .. ">" .. body .. "</" .. tag .. ">"
end

-- OMA NC 6.1.5.4.2 and 6.1.5.7.2: requestError in the common namespace,
-- its exception unqualified, one <variables> per variable.
local COMMON_NS = "urn:oma:xml:rest:netapi:common:1"
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
local function empty_value(S, root)
  local opaque = S.opaque and S.opaque[S.roots[root]]
  if opaque then
    return opaque.empty()
  end
  return {}
end

local function decode(S, req, root, opts)
  opts = opts or {}
  root_type(S, root, 3)
  local body = req.body or ""
  local content_type = req.headers and req.headers["content-type"]
  if not body:find("%S") then
    if opts.allow_empty or (S.may_be_empty and S.may_be_empty[root]) then
      return empty_value(S, root)
    end
    return bad(root)
  end
  local form = opts.form and S.decode_form
  local media = request.media_type(content_type)
  if media == M.JSON then
    local decoded = table.pack(decode_json(S, body, root))
    -- XML and form bodies with a repeated element are refused by their
    -- schema walk; cjson would keep the last of two keys in silence.
    local twice = decoded[1] ~= nil and json.duplicate_key(body)
    if twice then
      return nil, errors.new("SVC0002", twice)
    end
    return table.unpack(decoded, 1, decoded.n)
  elseif media == M.XML or media == "text/xml" then
    return decode_xml(S, body, root)
  elseif media == M.FORM and form then
    return form(body, root)
  end
  local accepted = OFFERED .. (form and (", " .. M.FORM) or "")
  return nil, errors.new("SVC3002", content_type or "(none)", accepted)
end

---------------------------------------------------------------------------
-- Responses
---------------------------------------------------------------------------

local function encode(S, format, root, value)
  if format == "xml" then
    return xml.DECLARATION .. xml_element(S, root, value), M.XML
  elseif format == "json" or format == nil then
    return encode_json(S, root, value), M.JSON
  end
  error("unknown format " .. tostring(format), 3)
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

-- The requestError response for an error of codec/errors in `format`
-- (JSON when nil): OMA NC 6.1.5.7 (XML) and D.8 (JSON). The same for
-- every schema.
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

---------------------------------------------------------------------------
-- Codecs
---------------------------------------------------------------------------

-- A codec for the schema `types` (see the header): a table of functions
--
--   decode(req, root, opts)  the body of `req` as the root element `root`:
--       the normalised value, or nil and the error to answer (400 SVC0002
--       naming the element at fault, or the root for an empty body; 400
--       SVC0001 for a body that is not JSON or XML; 415 SVC3002 for
--       another Content-Type). opts (optional):
--         form = true         also accept application/x-www-form-urlencoded
--                             where the schema has decode_form
--         allow_empty = true  an empty body gives the empty value
--   encode(format, root, value)  the body of `value` in `format` ("json"
--       or "xml"; JSON when nil) and its Content-Type. Raises when the
--       value does not fit the schema: a bug in the caller, not the client.
--   response(status, format, root, value, extra_headers)  a response
--       holding it, with Content-Type and Vary: Accept
--   read(format, root, text)  the value of a document without its
--       request around it (no Content-Type, no empty-body rule)
--   element(root, value)  the XML root element alone, without the XML
--       declaration (to embed it in another document)
--   negotiate, error_response  this module's, the same for every schema
--   types, JSON, XML, FORM
function M.new(types)
  for _, k in ipairs({ "NAMESPACE", "PREFIX", "roots", "fields", "is_scalar" }) do
    if types[k] == nil then
      error("a types module needs " .. k, 2)
    end
  end
  local S = types
  local c = { types = S, JSON = M.JSON, XML = M.XML, FORM = M.FORM,
    negotiate = M.negotiate, error_response = M.error_response }
  function c.decode(req, root, opts)
    return decode(S, req, root, opts)
  end
  function c.encode(format, root, value)
    return encode(S, format, root, value)
  end
  function c.response(status, format, root, value, extra_headers)
    local body, content_type = encode(S, format, root, value)
    return { status = status, headers = with_headers(extra_headers, content_type),
      body = body }
  end
  function c.read(format, root, text)
    root_type(S, root, 2)
    if format == "json" then
      return decode_json(S, text, root)
    elseif format == "xml" then
      return decode_xml(S, text, root)
    end
    error("unknown format " .. tostring(format), 2)
  end
  function c.element(root, value)
    return xml_element(S, root, value)
  end
  return c
end

-- The Notification Channel codec, built on first use: nc/types.lua needs
-- codec/notification, which needs this module, so it cannot be required
-- while this one loads.
local nc_codec
local function nc()
  if not nc_codec then
    nc_codec = M.new(require("nc.types"))
  end
  return nc_codec
end

-- decode, encode and response of the Notification Channel codec (see
-- M.new): what nc/ calls.
function M.decode(req, root, opts)
  return nc().decode(req, root, opts)
end

function M.encode(format, root, value)
  return nc().encode(format, root, value)
end

function M.response(status, format, root, value, extra_headers)
  return nc().response(status, format, root, value, extra_headers)
end

return M
