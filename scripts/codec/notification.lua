-- Notifications as enablers POST them to a callbackURL (API.md 2,
-- "Callback"), and the notificationList (OMA NC 5.2.2.3) that carries them
-- on to the client.
--
-- A notification belongs to another enabler's schema, so nothing here checks
-- its content: it must only be well-formed. Each one is kept as text in the
-- format it came in, root element included, so that what the client
-- receives is what the enabler sent: a JSON notification is cut out of the
-- body byte for byte (no re-encoding that would reorder keys or round
-- numbers), an XML one is re-serialised with every namespace declaration
-- in scope, so it stands alone.
--
-- When the client asked for the other format, nc/outbox converts a
-- notification with to_json / to_xml below. An enabler that knows the
-- schema of its notifications registers it (M.register: the movies area
-- does for movieNotification); a notification of a registered root is then
-- read against that schema and written typed, as the enabler would have
-- written it in the other format (ints as JSON numbers, its namespace,
-- element order and attributes in XML, JSON null <-> xsi:nil). Any other
-- notification, and one that does not fit its registered schema, is
-- converted by the generic XML <-> JSON mapping of the OMA JSON rules
-- [REST_NetAPI_Common], as the spec's examples show it (D.12 for
-- 6.3.5.1): elements and attributes become members, text-only elements
-- strings, repeated elements arrays; namespace declarations and xsi:type
-- attributes have no JSON form and are dropped.
local errors = require("codec.errors")
local request = require("http.request")
local json = require("codec.json")
local representation = require("codec.representation")
local xml = require("codec.xml")

local M = {}

local NC_NS = "urn:oma:xml:rest:netapi:notificationchannel:1"
local XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

local JSON = "application/json"
local XML = "application/xml"

-- The member holding an element's text when it also has attributes or
-- children, in the JSON form of a converted XML notification.
local TEXT_KEY = "$"

local function invalid()
  return nil, errors.new("SVC0002", "notification")
end

---------------------------------------------------------------------------
-- Finding values in JSON text. The text has been accepted by codec/json
-- first, so the scanner only has to find where each value ends.
---------------------------------------------------------------------------

local function skip_ws(s, i)
  return s:find("[^ \t\r\n]", i) or (#s + 1)
end

-- The index just past the string starting at s[i] == '"'.
local function string_end(s, i)
  local j = i + 1
  while true do
    local k = s:find('["\\]', j)
    if s:byte(k) == 34 then -- '"'
      return k + 1
    end
    j = k + 2 -- skip the escaped character
  end
end

-- The index just past the value starting at s[i].
local function value_end(s, i)
  local c = s:sub(i, i)
  if c == '"' then
    return string_end(s, i)
  elseif c == "{" or c == "[" then
    local depth, j = 0, i
    while true do
      local k = s:find('[%[%]{}"]', j)
      local ch = s:sub(k, k)
      if ch == '"' then
        j = string_end(s, k)
      elseif ch == "{" or ch == "[" then
        depth, j = depth + 1, k + 1
      else
        depth, j = depth - 1, k + 1
        if depth == 0 then
          return j
        end
      end
    end
  end
  return s:find("[,}%] \t\r\n]", i) or (#s + 1)
end

-- Calls fn(key, text) for each member of the object starting at
-- s[i] == "{", in document order (`key` decoded, `text` the value's text),
-- until fn returns false. Returns false when it stopped so, else true.
-- One at a time, so a caller that has seen enough stops the scan there.
local function each_member(s, i, fn)
  local j = skip_ws(s, i + 1)
  if s:sub(j, j) == "}" then
    return true
  end
  while true do
    local key_end = string_end(s, j)
    local key = json.decode(s:sub(j, key_end - 1))
    j = skip_ws(s, key_end)  -- at ":"
    j = skip_ws(s, j + 1)
    local e = value_end(s, j)
    if not fn(key, s:sub(j, e - 1)) then
      return false
    end
    j = skip_ws(s, e)
    if s:sub(j, j) == "}" then
      return true
    end
    j = skip_ws(s, j + 1) -- past ","
  end
end

-- Calls fn(text) for each element of the array starting at s[i] == "[",
-- as each_member does.
local function each_element(s, i, fn)
  local j = skip_ws(s, i + 1)
  if s:sub(j, j) == "]" then
    return true
  end
  while true do
    local e = value_end(s, j)
    if not fn(s:sub(j, e - 1)) then
      return false
    end
    j = skip_ws(s, e)
    if s:sub(j, j) == "]" then
      return true
    end
    j = skip_ws(s, j + 1)
  end
end

-- The members of the object starting at s[i] == "{": a sequence of
-- { key = <decoded key>, text = <the value's text> } in document order.
local function members(s, i)
  local out = {}
  each_member(s, i, function(key, text)
    out[#out + 1] = { key = key, text = text }
    return true
  end)
  return out
end

local function first_char(text)
  return text:sub(skip_ws(text, 1), skip_ws(text, 1))
end

-- One JSON notification item for `name` whose content is `text`.
local function json_item(name, text)
  return { root = name, format = "json", body = json.encode(name) .. ":" .. text }
end

-- What json_list gives besides nil when a list holds more notifications
-- than its limit.
local TOO_MANY = "too many"

-- Adds to `list` the notifications of one object of a notificationList
-- (each member a notification, or an array of them under one name).
-- Returns true; false when the object holds something that is not one;
-- false, TOO_MANY as soon as `list` holds more than `limit` (when given),
-- without scanning the rest.
local function add_json_members(list, text, state, limit)
  local t = text:sub(skip_ws(text, 1))
  if t:sub(1, 1) ~= "{" then
    return false
  end
  local why
  local function add(item)
    list[#list + 1] = item
    if limit and #list > limit then
      why = TOO_MANY
      return false
    end
    return true
  end
  local ok = each_member(t, 1, function(key, value)
    local c = first_char(value)
    if key == "ncListComplete" and state then
      local v = json.decode(value)
      if v == "true" or v == true then
        state.ncListComplete = true
      elseif v == "false" or v == false then
        state.ncListComplete = false
      else
        return false
      end
      return true
    elseif c == "[" then
      return each_element(value, 1, function(e)
        if first_char(e) ~= "{" then
          return false
        end
        return add(json_item(key, e))
      end)
    elseif c == "{" then
      return add(json_item(key, value))
    end
    return false
  end)
  return ok, why
end

-- Finishes a JSON item's body with its closing brace.
local function close_items(list)
  for _, item in ipairs(list) do
    item.body = "{" .. item.body .. "}"
  end
  return list
end

-- The notifications of the notificationList root value `text`: an array of
-- one-key objects (D.13), one object of them (D.12) or null (D.14).
-- Returns the list (ncListComplete goes into `state`, when given), or
-- nil; nil, TOO_MANY when it holds more than `limit` (optional)
-- notifications.
local function json_list(text, state, limit)
  local list = {}
  local c = first_char(text)
  local ok, why = true, nil
  if c == "[" then
    ok = each_element(text, 1, function(e)
      local fine
      fine, why = add_json_members(list, e, state, limit)
      return fine
    end)
  elseif c == "{" then
    ok, why = add_json_members(list, text, state, limit)
  elseif text:match("^%s*null%s*$") == nil then
    ok = false
  end
  if not ok then
    return nil, why
  end
  return close_items(list)
end

-- For codec/representation: the normalised notificationList value of the
-- JSON document `text` (already known to be an object whose only key is
-- "notificationList").
function M.list_from_json(text)
  local doc = text:sub(skip_ws(text, 1))
  local root = members(doc, 1)[1]
  local state = {}
  local list = json_list(root.text, state)
  if not list then
    return nil, errors.new("SVC0002", "notificationList")
  end
  return { notifications = list, ncListComplete = state.ncListComplete }
end

-- For codec/representation: the normalised notificationList value of the
-- root element `node` (already known to be nc:notificationList): its
-- ncListComplete, and every other child element a notification of some
-- enabler, kept as standalone XML text.
function M.list_from_xml(node)
  local out = { notifications = {} }
  for _, c in ipairs(node.children) do
    if type(c) == "string" then
      if c:find("%S") then
        return nil, errors.new("SVC0002", "notificationList")
      end
    elseif c.localname == "ncListComplete" and c.ns == nil then
      local v, err = representation.scalar("boolean", xml.text(c),
        "notificationList.ncListComplete")
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

---------------------------------------------------------------------------
-- Conversion between the two formats
---------------------------------------------------------------------------

-- Root element name -> the codec/representation codec of its registered
-- schema.
local schemas = {}

-- Registers `types` (a schema module as codec/representation.new takes
-- it, whose roots include `root`) for the notifications whose root element
-- is `root`; nil `types` removes the registration. Enablers call it at
-- start (movies/subscriptions/api.lua), so that nothing here or in nc/
-- needs to know them.
function M.register(root, types)
  if types == nil then
    schemas[root] = nil
    return
  end
  if not types.roots[root] then
    error("the schema has no root element " .. tostring(root), 2)
  end
  schemas[root] = representation.new(types)
end

-- The item read against its registered schema: the codec and the value,
-- or nil when there is no schema for its root or the item does not fit it
-- (an XML one in another namespace, say).
local function typed(item)
  local codec = schemas[item.root]
  if not codec then
    return nil
  end
  local value = codec.read(item.format, item.root, item.body)
  if value == nil then
    return nil
  end
  return codec, value
end

local function local_name(qname)
  return qname:match(":(.*)$") or qname
end

-- The JSON value of an element node (codec/xml) by the OMA JSON rules.
local function element_to_json(node)
  local obj = json.object()
  local count = 0
  for _, a in ipairs(node.attrs) do
    local prefix = a.name:match("^(.-):")
    local is_decl = a.name == "xmlns" or prefix == "xmlns"
    local is_xsi = prefix and node.scope[prefix] == XSI_NS
    if not is_decl and not is_xsi then
      obj[local_name(a.name)] = a.value
      count = count + 1
    end
  end
  local text = {}
  local has_children = false
  local repeated = {}
  for _, child in ipairs(node.children) do
    if type(child) == "string" then
      text[#text + 1] = child
    else
      has_children = true
      local name = child.localname
      local value = element_to_json(child)
      local prev = obj[name]
      if prev == nil then
        obj[name] = value
      elseif repeated[name] then
        prev[#prev + 1] = value
      else
        -- The second of a name: from now on they are an array.
        repeated[name] = true
        obj[name] = json.array({ prev, value })
      end
      count = count + 1
    end
  end
  local s = table.concat(text)
  if not has_children and count == 0 then
    return s
  end
  if s:find("%S") then
    obj[TEXT_KEY] = s
  end
  return obj
end

-- A notification item in JSON text (root included).
function M.to_json(item)
  if item.format == "json" then
    return item.body
  end
  local codec, value = typed(item)
  if codec then
    return (codec.encode("json", item.root, value))
  end
  local node = assert(xml.parse(item.body))
  return json.encode({ [node.localname] = element_to_json(node) })
end

local function scalar_text(v)
  if type(v) == "number" then
    local i = math.tointeger(v)
    return i and string.format("%d", i) or json.encode(v)
  elseif type(v) == "boolean" then
    return v and "true" or "false"
  elseif v == json.null then
    return ""
  end
  return v
end

-- Appends to `out` the XML of the JSON value `v` as element(s) `name`.
local function json_to_xml(out, name, v, depth)
  if depth > 64 then
    error("notification nested too deeply", 0)
  end
  if type(v) == "table" and not json.is_object(v) then
    for _, item in ipairs(v) do
      json_to_xml(out, name, item, depth + 1)
    end
    return
  end
  local tag = xml.name(name)
  if type(v) ~= "table" then
    out[#out + 1] = "<" .. tag .. ">" .. xml.escape(scalar_text(v)) .. "</" .. tag .. ">"
    return
  end
  local keys = {}
  for k in pairs(v) do
    keys[#keys + 1] = k
  end
  table.sort(keys)
  out[#out + 1] = "<" .. tag .. ">"
  for _, k in ipairs(keys) do
    if k == TEXT_KEY then
      out[#out + 1] = xml.escape(scalar_text(v[k]))
    else
      json_to_xml(out, k, v[k], depth + 1)
    end
  end
  out[#out + 1] = "</" .. tag .. ">"
end

-- A notification item as one XML element (no XML declaration). A JSON
-- notification without a registered schema has no namespace to give it,
-- so it comes out unqualified.
function M.to_xml(item)
  if item.format == "xml" then
    return item.body
  end
  local codec, value = typed(item)
  if codec then
    return codec.element(item.root, value)
  end
  local doc = assert(json.decode(item.body))
  local out = {}
  json_to_xml(out, item.root, doc[item.root], 0)
  return table.concat(out)
end

-- For codec/representation: the JSON document of a notificationList value.
-- OMA NC D.13 and API.md 2: always an array of one-key objects.
function M.list_to_json(value)
  local parts = {}
  for i, item in ipairs(value.notifications or {}) do
    parts[i] = M.to_json(item)
  end
  if value.ncListComplete ~= nil then
    parts[#parts + 1] = '{"ncListComplete":' .. tostring(value.ncListComplete == true) .. "}"
  end
  return '{"notificationList":[' .. table.concat(parts, ",") .. "]}"
end

-- For codec/representation: the children of the nc:notificationList
-- element of a notificationList value, each notification in XML
-- (converted when stored as JSON), then ncListComplete when set.
function M.list_to_xml(value)
  local out = {}
  for _, item in ipairs(value.notifications or {}) do
    out[#out + 1] = M.to_xml(item)
  end
  if value.ncListComplete ~= nil then
    out[#out + 1] = "<ncListComplete>" .. tostring(value.ncListComplete == true)
      .. "</ncListComplete>"
  end
  return table.concat(out)
end

---------------------------------------------------------------------------
-- Splitting a POSTed body
---------------------------------------------------------------------------

-- 400 SVC0003: a notificationList longer than `limit`.
local function too_many(limit)
  return nil, errors.new("SVC0003", "notificationList",
    string.format("at most %d notifications", limit))
end

-- A lower bound on the notifications of the notificationList value `v` as
-- cjson decoded it, exact for a valid list, counting no further than
-- `limit` + 1: each non-empty array under a name is that many, each object
-- one. cjson gives {} and [] alike as an empty table, one notification or
-- none; `text` (what cjson parsed) tells: with no "[]" in it anywhere,
-- every empty table was a {}. With one, empty tables count as none.
local function count_decoded(v, limit, text)
  if type(v) ~= "table" then
    return 0
  end
  local empty = text:find("%[%s*%]") and 0 or 1
  local objects = json.is_object(v) and { v } or v
  local n = 0
  for _, obj in ipairs(objects) do
    if type(obj) == "table" and json.is_object(obj) then
      for _, member in pairs(obj) do
        if type(member) == "table" then
          local len = #member
          n = n + (len > 0 and len or (next(member) ~= nil and 1 or empty))
          if n > limit then
            return n
          end
        end
      end
    end
  end
  return n
end

local function split_json(body, limit)
  local doc, parsed = json.decode_text(body)
  if doc == nil then
    return nil, parsed
  end
  -- The scan below cuts notifications out of the text cjson accepted,
  -- which differs from the body when it had trailing commas.
  local text = parsed:sub(skip_ws(parsed, 1))
  -- cjson decodes [] as an empty table, which is_object cannot tell from {}.
  if not json.is_object(doc) or text:sub(1, 1) ~= "{" then
    return invalid()
  end
  -- cjson has read the list already: a list past the limit is refused
  -- on its value before the text is scanned at all, which would cost
  -- about 2 ms per thousand notifications.
  if limit and count_decoded(doc.notificationList, limit, text) > limit then
    return too_many(limit)
  end
  local top = members(text, 1)
  if #top ~= 1 then
    return invalid()
  end
  local list, why
  if top[1].key == "notificationList" then
    list, why = json_list(top[1].text, nil, limit)
    if why == TOO_MANY then
      return too_many(limit)
    end
  elseif first_char(top[1].text) == "{" then
    list = close_items({ json_item(top[1].key, top[1].text) })
  end
  if not list or #list == 0 then
    return invalid()
  end
  return list
end

local function split_xml(body, limit)
  local root, err = xml.parse(body)
  if not root then
    return nil, err
  end
  local list = {}
  if root.localname == "notificationList" and root.ns == NC_NS then
    for _, child in ipairs(root.children) do
      if type(child) == "table" then
        if child.localname ~= "ncListComplete" or child.ns ~= nil then
          if limit and #list >= limit then
            -- Before serializing the rest, which is the costly part.
            return too_many(limit)
          end
          list[#list + 1] = { root = child.localname, format = "xml",
            body = xml.serialize(child) }
        end
      elseif child:find("%S") then
        return invalid()
      end
    end
  else
    list[1] = { root = root.localname, format = "xml", body = xml.serialize(root) }
  end
  if #list == 0 then
    return invalid()
  end
  return list
end

-- The notifications of a POSTed body, in order: a sequence of
-- { root = <element name>, format = "json" | "xml", body = <text> }.
-- Fails with 415 SVC3002 for another Content-Type, 400 SVC0001 for a body
-- that is not JSON or XML, 400 SVC0002 naming "notification" for one that
-- holds no notification, 400 SVC0003 naming "notificationList" and the
-- bound for a list of more than `limit` (optional) notifications, found
-- without reading the list past the bound.
function M.split(req, limit)
  local content_type = req.headers and req.headers["content-type"]
  local media = request.media_type(content_type)
  local body = req.body or ""
  if media == JSON then
    if not body:find("%S") then
      return invalid()
    end
    return split_json(body, limit)
  elseif media == XML or media == "text/xml" then
    if not body:find("%S") then
      return invalid()
    end
    return split_xml(body, limit)
  end
  return nil, errors.new("SVC3002", content_type or "(none)", JSON .. ", " .. XML)
end

return M
