-- XML in and out: a small element tree over lua-expat (lxp), and the
-- escaping and serialising that go with it.
--
-- Parsing is expat's, without its namespace processing: this module binds
-- prefixes itself (Namespaces in XML 1.0, section 6) so that every element
-- keeps the prefix it was written with and can be written out again alone,
-- carrying the declarations of its ancestors (codec/notification needs
-- that; expat's expanded names lose the prefix).
--
-- What a request body may not do: declare a DOCTYPE. No OMA document has
-- one, and refusing it outright shuts out every entity trick at once:
-- external entities (XXE) and the exponential expansion of nested internal
-- ones ("billion laughs"). Expat 2.4+ also bounds amplification, but we do
-- not rely on the library version. Nesting is bounded too (MAX_DEPTH), as
-- our own walks over the tree recurse.
--
-- A node is
--   { name = "pr:presenceNotification",     -- as written
--     prefix = "pr" | nil, localname = "presenceNotification",
--     ns = "urn:..." | nil,                  -- nil: no namespace
--     attrs = { { name = "rel", value = "..." }, ... },  -- in order,
--                                            -- xmlns declarations included
--     scope = { [prefix] = uri, [""] = default uri },    -- bindings in scope
--     children = { node | "text", ... } }    -- adjacent text merged
local lxp = require("lxp")
local errors = require("codec.errors")

local M = {}

-- Deep enough for any notification we know of, shallow enough to keep
-- recursive walks off the C stack limit.
local MAX_DEPTH = 64

M.XML_NS = "http://www.w3.org/XML/1998/namespace"
M.XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

local function fail(msg)
  return nil, errors.new("SVC0001", "malformed XML: " .. msg)
end

-- A parse error raised from a callback, told apart from a bug by its type.
local Abort = {}
Abort.__index = Abort
local function abort(msg)
  error(setmetatable({ msg = msg }, Abort), 0)
end

-- Splits a QName; nil when it is not one ("a:b:c", ":a", "a:").
local function split_qname(name)
  local prefix, localname = name:match("^([^:]+):([^:]+)$")
  if prefix then
    return prefix, localname
  end
  if name:find(":", 1, true) then
    return nil
  end
  return false, name
end

local function start_element(state, name, attrs)
  local stack = state.stack
  local parent = stack[#stack]
  if #stack >= MAX_DEPTH then
    abort("nested deeper than " .. MAX_DEPTH .. " elements")
  end
  local scope = {}
  for k, v in pairs(parent and parent.scope or { xml = M.XML_NS }) do
    scope[k] = v
  end
  local list = {}
  for i, an in ipairs(attrs) do
    local v = attrs[an]
    list[i] = { name = an, value = v }
    if an == "xmlns" then
      -- xmlns="" undeclares the default namespace.
      scope[""] = v ~= "" and v or nil
    elseif an:sub(1, 6) == "xmlns:" then
      local p = an:sub(7)
      if v == "" or p == "xmlns" or (p == "xml") ~= (v == M.XML_NS) then
        abort("bad declaration of prefix " .. p)
      end
      scope[p] = v
    end
  end
  local prefix, localname = split_qname(name)
  if prefix == nil then
    abort("bad element name " .. name)
  end
  local ns
  if prefix then
    ns = scope[prefix]
    if not ns then
      abort("unbound prefix " .. prefix)
    end
  else
    ns = scope[""]
  end
  for _, a in ipairs(list) do
    local ap = split_qname(a.name)
    if ap == nil then
      abort("bad attribute name " .. a.name)
    elseif ap and ap ~= "xmlns" and not scope[ap] then
      abort("unbound prefix " .. ap)
    end
  end
  local node = { name = name, prefix = prefix or nil, localname = localname,
    ns = ns, attrs = list, scope = scope, children = {} }
  if parent then
    parent.children[#parent.children + 1] = node
  else
    state.root = node
  end
  stack[#stack + 1] = node
end

-- Parses `text`. Returns the root node, or nil and SVC0001 when the text
-- is not well-formed, namespace-well-formed XML or declares a DOCTYPE.
function M.parse(text)
  if type(text) ~= "string" then
    return fail("no text")
  end
  local state = { stack = {} }
  local callbacks = {
    StartElement = function(_, name, attrs)
      start_element(state, name, attrs)
    end,
    EndElement = function()
      state.stack[#state.stack] = nil
    end,
    CharacterData = function(_, s)
      local top = state.stack[#state.stack]
      local children = top.children
      local n = #children
      if type(children[n]) == "string" then
        children[n] = children[n] .. s
      else
        children[n + 1] = s
      end
    end,
    StartDoctypeDecl = function()
      abort("a DOCTYPE is not allowed")
    end,
  }
  local parser = lxp.new(callbacks)
  local ok, r1, r2 = pcall(function()
    local ok1, msg = parser:parse(text)
    if ok1 then
      ok1, msg = parser:parse()
    end
    return ok1, msg
  end)
  -- close() raises when the document was not complete; the parse result
  -- already says so.
  pcall(parser.close, parser)
  if not ok then
    if getmetatable(r1) == Abort then
      return fail(r1.msg)
    end
    error(r1, 0)
  end
  if not r1 then
    return fail(tostring(r2))
  end
  if not state.root then
    return fail("no root element")
  end
  return state.root
end

-- The element children of `node`, in order.
function M.elements(node)
  local out = {}
  for _, c in ipairs(node.children) do
    if type(c) == "table" then
      out[#out + 1] = c
    end
  end
  return out
end

-- The text directly inside `node` (not that of its child elements).
function M.text(node)
  local out = {}
  for _, c in ipairs(node.children) do
    if type(c) == "string" then
      out[#out + 1] = c
    end
  end
  return table.concat(out)
end

-- The value of the attribute in namespace `ns` named `localname`, with the
-- scope to resolve it in, or nil.
function M.attribute(node, ns, localname)
  for _, a in ipairs(node.attrs) do
    local p, l = split_qname(a.name)
    if p and p ~= "xmlns" and node.scope[p] == ns and l == localname then
      return a.value
    end
  end
  return nil
end

-- Resolves a QName-valued attribute (xsi:type="nc:LongPollingData") in the
-- scope of `node`: the namespace (nil for none) and the local name, or nil
-- when the prefix is unbound or the text is no QName.
function M.resolve_qname(node, value)
  local p, l = split_qname((value:gsub("^%s+", ""):gsub("%s+$", "")))
  if p == nil then
    return nil
  end
  if p then
    local ns = node.scope[p]
    if not ns then
      return nil
    end
    return ns, l
  end
  return node.scope[""], l
end

---------------------------------------------------------------------------
-- Writing
---------------------------------------------------------------------------

-- Characters XML 1.0 (2.2) does not allow at all, even as references:
-- controls other than tab, newline and carriage return. They can only
-- come from JSON or form input; they are replaced, not sent broken.
local ILLEGAL = "[%z\1-\8\11\12\14-\31]"
local REPLACEMENT = "\u{FFFD}"

local TEXT_ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
  ["\r"] = "&#13;" }
local ATTR_ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
  ['"'] = "&quot;", ["\t"] = "&#9;", ["\n"] = "&#10;", ["\r"] = "&#13;" }

-- Character data escaped for element content. A carriage return is a
-- reference so that end-of-line handling (2.11) does not eat it.
function M.escape(s)
  s = s:gsub(ILLEGAL, REPLACEMENT)
  return (s:gsub("[&<>\r]", TEXT_ESCAPES))
end

-- Text escaped for a double-quoted attribute value; whitespace other than
-- space is a reference, or attribute normalisation (3.3.3) would turn it
-- into spaces.
function M.escape_attr(s)
  s = s:gsub(ILLEGAL, REPLACEMENT)
  return (s:gsub('[&<>"\t\n\r]', ATTR_ESCAPES))
end

-- `name` made an XML element name: characters a name may not hold become
-- "_" (only for names that come from JSON keys).
function M.name(name)
  name = tostring(name):gsub("[^%w_%.%-]", "_")
  if not name:match("^[%a_]") then
    name = "_" .. name
  end
  return name
end

local function write(out, node, extra_decls, depth)
  if depth > MAX_DEPTH then
    error("XML tree nested too deeply", 0)
  end
  out[#out + 1] = "<" .. node.name
  for _, d in ipairs(extra_decls or {}) do
    out[#out + 1] = " " .. d
  end
  for _, a in ipairs(node.attrs) do
    out[#out + 1] = " " .. a.name .. '="' .. M.escape_attr(a.value) .. '"'
  end
  if #node.children == 0 then
    out[#out + 1] = "/>"
    return
  end
  out[#out + 1] = ">"
  for _, c in ipairs(node.children) do
    if type(c) == "string" then
      out[#out + 1] = M.escape(c)
    else
      write(out, c, nil, depth + 1)
    end
  end
  out[#out + 1] = "</" .. node.name .. ">"
end

-- The element `node` (from M.parse) as text that stands alone: its start
-- tag also declares every namespace binding it inherited, so prefixes used
-- in names or in QName values (xsi:type) still resolve. No XML declaration.
function M.serialize(node)
  local own = {}
  for _, a in ipairs(node.attrs) do
    if a.name == "xmlns" then
      own[""] = true
    elseif a.name:sub(1, 6) == "xmlns:" then
      own[a.name:sub(7)] = true
    end
  end
  local prefixes = {}
  for p in pairs(node.scope) do
    if not own[p] and p ~= "xml" then
      prefixes[#prefixes + 1] = p
    end
  end
  table.sort(prefixes)
  local decls = {}
  for i, p in ipairs(prefixes) do
    local attr = p == "" and "xmlns" or ("xmlns:" .. p)
    decls[i] = attr .. '="' .. M.escape_attr(node.scope[p]) .. '"'
  end
  local out = {}
  write(out, node, decls, 0)
  return table.concat(out)
end

M.DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

return M
