local form = require("codec.form")
local fx = require("fixtures.nc_fixtures")

describe("codec.form", function()
  it("reads the C.1 examples as printed, line breaks and all", function()
    assert.same({ clientCorrelator = "987", applicationTag = "myApp", channelType = "OMAPush",
      channelLifetime = 7200, channelData = { appId = "x-wap-application:wml.ua", maxNotifications = 1 } },
      form.decode(fx.raw("C.1.2-request.form"), "notificationChannel"))
  end)

  it("gives no channelData when no channel data parameter is sent", function()
    assert.same({ channelType = "WebSockets" }, form.decode("channelType=WebSockets", "notificationChannel"))
  end)

  it("decodes escapes and refuses broken ones", function()
    assert.same({ channelType = "LongPolling", applicationTag = "a b/c" },
      form.decode("channelType=LongPolling&applicationTag=a+b%2Fc", "notificationChannel"))
    local v, err = form.decode("channelType=LongPolling&applicationTag=%zz", "notificationChannel")
    assert.is_nil(v)
    assert.equal("SVC0002", err.id)
    assert.same({ "applicationTag" }, err.variables)
  end)

  it("checks channel data against the channel type", function()
    assert.same({ channelType = "OMAPush", channelData = { appId = "x" } },
      form.decode("channelType=OMAPush&appId=x", "notificationChannel"))
    local _, err = form.decode("channelType=WebSockets&maxWaitTime=3", "notificationChannel")
    assert.same({ "maxWaitTime" }, err.variables)
    -- An unknown type takes any channel data element, to be refused later.
    assert.same({ channelType = "Pigeon", channelData = { appId = "x", maxWaitTime = 1 } },
      form.decode("channelType=Pigeon&appId=x&maxWaitTime=1", "notificationChannel"))
  end)

  it("reads the C.2 poll", function()
    assert.same({}, form.decode(fx.raw("C.2.1-request.form"), "longPollingRequestParameters"))
  end)
end)
