local types = require("nc.types")

-- name -> "kind[*][!]" ("*" repeatable, "!" required), in schema order.
local function shape(type_name)
  local out = {}
  for _, e in ipairs(types.fields(type_name)) do
    out[#out + 1] = e.name .. ":" .. e.kind .. (e.repeatable and "*" or "") .. (e.required and "!" or "")
  end
  return out
end

describe("nc.types", function()
  it("has the namespace of OMA NC 5.2.1", function()
    assert.equal("urn:oma:xml:rest:netapi:notificationchannel:1", types.NAMESPACE)
  end)

  -- The tables of OMA NC 5.2.2, element for element.
  local TABLES = {
    NotificationChannelList = { "notificationChannel:NotificationChannel*", "resourceURL:anyURI!" },
    NotificationChannel = { "clientCorrelator:string", "applicationTag:string", "channelType:string!",
      "channelData:ChannelData", "channelLifetime:int", "callbackURL:anyURI", "resourceURL:anyURI" },
    NotificationList = { "ncListComplete:boolean" },
    LargePollingNotification = { "channelURL:anyURI!", "channelExpiry:dateTime!" },
    ChannelData = {},
    LongPollingData = { "channelURL:anyURI", "maxNotifications:int", "maxWaitTime:int" },
    OMAPushData = { "appId:string", "maxNotifications:int", "largeDataPolling:LargeDataPolling" },
    LargeDataPolling = { "pollingEnabled:boolean", "maxPollingNotifications:int" },
    LongPollingRequestParameters = {},
    WebSocketsData = { "channelURL:anyURI", "maxNotifications:int" },
    ConnCheck = { "checkInterval:int", "newChannelLifetime:int" },
    ConnAck = { "channelLifetime:int" },
    NativeChannelData = { "channelSubType:string!", "registrationToken:string!",
      "channelSubTypeVersion:string", "maxNotifications:int", "largeDataPolling:LargeDataPolling" },
    NotificationChannelLifetime = { "channelLifetime:int" },
    Link = { "rel:string!", "href:anyURI!" },
  }
  for name, want in pairs(TABLES) do
    it("describes " .. name .. " as its table does", function()
      assert.same(want, shape(name))
    end)
  end

  it("names the root elements of 5.2.2", function()
    assert.same({
      notificationChannelList = "NotificationChannelList",
      notificationChannel = "NotificationChannel",
      notificationList = "NotificationList",
      largePollingNotification = "LargePollingNotification",
      longPollingRequestParameters = "LongPollingRequestParameters",
      connCheck = "ConnCheck",
      connAck = "ConnAck",
      notificationChannelLifetime = "NotificationChannelLifetime",
    }, types.roots)
  end)

  it("refers only to kinds it defines", function()
    for name, fields in pairs(types.types) do
      for _, e in ipairs(fields) do
        assert.is_true(types.is_scalar(e.kind) or types.types[e.kind] ~= nil,
          name .. "." .. e.name .. " has kind " .. e.kind)
      end
    end
  end)

  describe("channel_data", function()
    it("gives the data type of each channel type of 5.2.3.1", function()
      for _, t in ipairs({ "LongPolling", "OMAPush", "WebSockets", "NativeChannel" }) do
        assert.same({ t .. "Data", true }, { types.channel_data(t) })
      end
    end)

    it("gives the union of all data elements for anything else, none required", function()
      for _, t in ipairs({ "Pigeon", "longpolling", "", false }) do
        local name, known = types.channel_data(t)
        assert.is_false(known)
        assert.equal("UnknownChannelData", name)
      end
      local names = {}
      for _, e in ipairs(types.fields("UnknownChannelData")) do
        assert.is_false(e.required)
        names[#names + 1] = e.name
      end
      assert.same({ "channelURL", "maxNotifications", "maxWaitTime", "appId", "largeDataPolling",
        "channelSubType", "registrationToken", "channelSubTypeVersion" }, names)
    end)
  end)

  it("raises for a type it does not know", function()
    assert.has_error(function() types.fields("Nope") end)
  end)
end)
