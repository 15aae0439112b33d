-- Comparing documents by structure, for specs that check what we send
-- against the OMA examples (spec/fixtures/nc). The examples come from a
-- PDF: URLs are wrapped mid-value and indentation is arbitrary, so every
-- run of whitespace inside text and attribute values is dropped before
-- comparing. Namespace declarations are not structure (what matters is
-- the namespace each element is in); element order is.
--
--   local structure = require("support.structure")
--   assert.same(structure.xml(expected_text), structure.xml(our_text))
--   assert.same(structure.json(expected_text), structure.json(our_text))
--   structure.items(text, content_type)  -- a notificationList, item by item
local json = require("codec.json")
local notification = require("codec.notification")
local rep = require("codec.representation")
local xml = require("codec.xml")

local M = {}

local function squeeze(s)
  return (s:gsub("%s+", ""))
end

local function canon_node(node)
  local attrs = {}
  for _, a in ipairs(node.attrs) do
    if a.name ~= "xmlns" and a.name:sub(1, 6) ~= "xmlns:" then
      attrs[a.name:match(":(.*)$") or a.name] = squeeze(a.value)
    end
  end
  local children = {}
  for _, c in ipairs(xml.elements(node)) do
    children[#children + 1] = canon_node(c)
  end
  return {
    name = (node.ns and ("{" .. node.ns .. "}") or "") .. node.localname,
    attrs = attrs,
    text = squeeze(xml.text(node)),
    children = children,
  }
end

-- The structure of the XML document `text`.
function M.xml(text)
  return canon_node(assert(xml.parse(text)))
end

local function canon_value(v)
  if type(v) == "string" then
    return squeeze(v)
  elseif type(v) == "table" then
    local out = {}
    for k, x in pairs(v) do
      out[k] = canon_value(x)
    end
    return out
  end
  return v
end

-- The structure of the JSON document `text` (trailing commas allowed, as
-- in Appendix D).
function M.json(text)
  return canon_value(assert(json.decode(text)))
end

-- The notifications of a notificationList document, each as
-- { root, value } with value its JSON structure (XML ones converted by the
-- OMA JSON rules), so lists can be compared across formats and across
-- the object / array forms of Appendix D.
function M.items(text, content_type)
  local list = assert(rep.decode({ headers = { ["content-type"] = content_type },
    body = text }, "notificationList"))
  local out = {}
  for i, item in ipairs(list.notifications) do
    out[i] = { root = item.root, value = M.json(notification.to_json(item)) }
  end
  return out
end

return M
