-- The schema of the Notification Channel data types (OMA NC 5.2.2) that this
-- server reads or writes, and of the root elements that use them.
--
-- One table drives every representation: codec/representation.lua checks
-- and normalises JSON input against it and reads and writes XML with it, so
-- the two formats cannot drift apart. Each type lists its elements in the
-- spec's table order, which is also the XML sequence order of the schema
-- [REST_SUP_NotificationChannel]; each element says
--
--   name        the element name, as in the spec (camelCase)
--   kind        "string", "anyURI", "int", "boolean", "dateTime", or the
--               name of another type in M.types
--   repeatable  true for [0..unbounded]: the normalised value is then always
--               a Lua sequence, possibly empty
--   required    true where the spec's "Optional" column says No
--
-- Two types are special:
--
--   ChannelData is abstract (5.2.2.5). The concrete type of a channelData
--   element follows the sibling channelType: "<channelType>Data" (XML
--   carries it as xsi:type="nc:<channelType>Data"). M.channel_data(channelType)
--   gives it; for a channelType the spec does not define, the value is read
--   against the union of all known channel data elements (none required),
--   so the caller can refuse the type with the right error.
--
--   NotificationList (5.2.2.3) holds notifications whose types belong to
--   other enablers. Its normalised value is not keyed by element names:
--     { notifications = { { root = "presenceNotification", format = "json"
--                           | "xml", body = "<the notification alone>" }, ... },
--       ncListComplete = true | false | nil }
--   `notifications` is a sequence of what codec/notification.split returns;
--   codec/notification reads and writes it (M.opaque below), embedding each
--   body, converted when its format is not the one asked for.
--
-- The hooks at the end of this file tell codec/representation about both.
local form = require("codec.form")
local notification = require("codec.notification")

local M = {}

M.NAMESPACE = "urn:oma:xml:rest:netapi:notificationchannel:1"
M.PREFIX = "nc"

-- OMA NC 5.2.3.1.
M.CHANNEL_TYPES = { "LongPolling", "OMAPush", "WebSockets", "NativeChannel" }

local function el(name, kind, required, repeatable)
  return { name = name, kind = kind, required = required or false,
    repeatable = repeatable or false }
end

local REQUIRED, OPTIONAL = true, false

M.types = {
  -- 5.2.2.1
  NotificationChannelList = {
    el("notificationChannel", "NotificationChannel", OPTIONAL, true),
    el("resourceURL", "anyURI", REQUIRED),
  },
  -- 5.2.2.2
  NotificationChannel = {
    el("clientCorrelator", "string", OPTIONAL),
    el("applicationTag", "string", OPTIONAL),
    el("channelType", "string", REQUIRED),
    el("channelData", "ChannelData", OPTIONAL),
    el("channelLifetime", "int", OPTIONAL),
    el("callbackURL", "anyURI", OPTIONAL),
    el("resourceURL", "anyURI", OPTIONAL),
  },
  -- 5.2.2.3; see the note above.
  NotificationList = {
    el("ncListComplete", "boolean", OPTIONAL),
  },
  -- 5.2.2.4
  LargePollingNotification = {
    el("channelURL", "anyURI", REQUIRED),
    el("channelExpiry", "dateTime", REQUIRED),
  },
  -- 5.2.2.5: abstract, no elements of its own.
  ChannelData = {},
  -- 5.2.2.6
  LongPollingData = {
    el("channelURL", "anyURI", OPTIONAL),
    el("maxNotifications", "int", OPTIONAL),
    el("maxWaitTime", "int", OPTIONAL),
  },
  -- 5.2.2.7
  OMAPushData = {
    el("appId", "string", OPTIONAL),
    el("maxNotifications", "int", OPTIONAL),
    el("largeDataPolling", "LargeDataPolling", OPTIONAL),
  },
  -- 5.2.2.8
  LargeDataPolling = {
    el("pollingEnabled", "boolean", OPTIONAL),
    el("maxPollingNotifications", "int", OPTIONAL),
  },
  -- 5.2.2.9: empty in this version of the spec.
  LongPollingRequestParameters = {},
  -- 5.2.2.10
  WebSocketsData = {
    el("channelURL", "anyURI", OPTIONAL),
    el("maxNotifications", "int", OPTIONAL),
  },
  -- 5.2.2.11
  ConnCheck = {
    el("checkInterval", "int", OPTIONAL),
    el("newChannelLifetime", "int", OPTIONAL),
  },
  -- 5.2.2.12
  ConnAck = {
    el("channelLifetime", "int", OPTIONAL),
  },
  -- 5.2.2.13. channelSubType is an enumeration (5.2.3.2) kept as given.
  NativeChannelData = {
    el("channelSubType", "string", REQUIRED),
    el("registrationToken", "string", REQUIRED),
    el("channelSubTypeVersion", "string", OPTIONAL),
    el("maxNotifications", "int", OPTIONAL),
    el("largeDataPolling", "LargeDataPolling", OPTIONAL),
  },
  -- 5.2.2.14
  NotificationChannelLifetime = {
    el("channelLifetime", "int", OPTIONAL),
  },
  -- common:Link [REST_NetAPI_Common]: in XML both are attributes.
  Link = {
    el("rel", "string", REQUIRED),
    el("href", "anyURI", REQUIRED),
  },
}

-- Root element name -> type name (the "A root element named ..." lines).
M.roots = {
  notificationChannelList = "NotificationChannelList",
  notificationChannel = "NotificationChannel",
  notificationList = "NotificationList",
  largePollingNotification = "LargePollingNotification",
  longPollingRequestParameters = "LongPollingRequestParameters",
  connCheck = "ConnCheck",
  connAck = "ConnAck",
  notificationChannelLifetime = "NotificationChannelLifetime",
}

-- Elements of these types that XML carries as attributes, not children.
M.attributes = { Link = true }

-- The union of every known channel data element, for a channelType the
-- spec does not define: nothing required, each element as its own type
-- declares it (they agree where names repeat).
local UNION = {}
do
  local seen = {}
  for _, name in ipairs({ "LongPollingData", "OMAPushData", "WebSocketsData",
      "NativeChannelData" }) do
    for _, e in ipairs(M.types[name]) do
      if not seen[e.name] then
        seen[e.name] = true
        UNION[#UNION + 1] = el(e.name, e.kind, OPTIONAL, e.repeatable)
      end
    end
  end
end
M.types.UnknownChannelData = UNION

-- The type name of the channelData of a channel of `channel_type`, and
-- whether the spec defines it. Unknown or absent types give the union.
function M.channel_data(channel_type)
  if type(channel_type) == "string" then
    local name = channel_type .. "Data"
    for _, t in ipairs(M.CHANNEL_TYPES) do
      if t == channel_type then
        return name, true
      end
    end
  end
  return "UnknownChannelData", false
end

-- The element list of the type named `name` (raises for an unknown name:
-- a bug in the schema or its caller).
function M.fields(name)
  local t = M.types[name]
  if not t then
    error("unknown NC type " .. tostring(name), 2)
  end
  return t
end

-- True when `kind` names a scalar rather than a nested type.
local SCALARS = { string = true, anyURI = true, int = true, boolean = true,
  dateTime = true }
function M.is_scalar(kind)
  return SCALARS[kind] == true
end

---------------------------------------------------------------------------
-- Hooks for codec/representation: what a walk over the tables above cannot
-- do alone (see that file's header for their shape).
---------------------------------------------------------------------------

-- Every NC document declares the xsi prefix on its root, whether or not
-- it writes an xsi:type, as the spec's examples do.
M.DECLARE_XSI = true

-- ChannelData (see the top of this file): its type follows channelType;
-- XML names it xsi:type="nc:<channelType>Data", written only for the
-- channel types the spec defines.
M.abstract = {
  ChannelData = {
    discriminator = "channelType",
    concrete = M.channel_data,
    xsi_name = function(channel_type)
      return tostring(channel_type) .. "Data"
    end,
  },
}

-- NotificationList (see the top of this file), read and written by
-- codec/notification: its items are other enablers' notifications.
M.opaque = {
  NotificationList = {
    from_json = notification.list_from_json,
    from_xml = notification.list_from_xml,
    to_json = notification.list_to_json,
    to_xml = notification.list_to_xml,
    empty = function()
      return { notifications = {} }
    end,
  },
}

-- OMA NC C.2: "an empty string in this version". A long poll may come
-- without a body whatever its Content-Type.
M.may_be_empty = { longPollingRequestParameters = true }

-- Appendix C: channel creation and long polls may be form bodies.
M.decode_form = form.decode

return M
