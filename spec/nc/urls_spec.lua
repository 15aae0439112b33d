local urls = require("nc.urls")

describe("nc.urls", function()
  local P = "http://nc.example:8080"

  it("builds the channels and channel URLs with the userId encoded", function()
    assert.equal(P .. "/notificationchannel/v1/tel%3A%2B19585550100/channels",
      urls.channels(P, "tel:+19585550100"))
    assert.equal(P .. "/notificationchannel/v1/acr%3Apseudonym123/channels/ch1",
      urls.channel(P, "acr:pseudonym123", "ch1"))
    assert.equal(P .. "/notificationchannel/v1/a%2Fb%20c/channels/x",
      urls.channel(P, "a/b c", "x"))
  end)

  it("builds the LongPolling channelURL under the channel", function()
    assert.equal(P .. "/notificationchannel/v1/tel%3A%2B1/channels/ch1/notifications",
      urls.long_poll(P, "tel:+1", "ch1"))
  end)

  it("builds the WebSockets channelURL with ws or wss", function()
    assert.equal("ws://nc.example:8080/notificationchannel/v1/u/channels/c/ws",
      urls.websocket(P, "u", "c"))
    assert.equal("wss://nc.example/base/notificationchannel/v1/u/channels/c/ws",
      urls.websocket("https://nc.example/base", "u", "c"))
    assert.equal("wss://nc.example/notificationchannel/v1/u/channels/c/ws",
      urls.websocket("HTTPS://nc.example", "u", "c"))
  end)

  it("tells the userIds whose URLs could be followed from those that could not", function()
    -- RFC 3986 5.2.4: a client removes "." and ".." segments before sending.
    for _, user in ipairs({ ".", "..", "" }) do
      assert.is_false(urls.usable_user(user), user)
    end
    assert.is_false(urls.usable_user(nil))
    for _, user in ipairs({ "...", ".a", "a.", "tel:+1", "acr:..", "./x", "../x" }) do
      assert.is_true(urls.usable_user(user), user)
      assert.is_nil(urls.channels(P, user):match("/%.%.?/"), user)
    end
  end)

  it("builds the callbackURL apart from the user's URLs", function()
    assert.equal(P .. "/notificationchannel/v1/callbacks/cb_1-x",
      urls.callback(P, "cb_1-x"))
  end)

  it("reads the callbackId back from one of our callbackURLs only", function()
    assert.equal("cb1", urls.callback_id(P, urls.callback(P, "cb1")))
    assert.is_nil(urls.callback_id(P, "http://other:8080/notificationchannel/v1/callbacks/cb1"))
    assert.is_nil(urls.callback_id(P, P .. "/notificationchannel/v1/callbacks/"))
    assert.is_nil(urls.callback_id(P, P .. "/notificationchannel/v1/callbacks/a/b"))
    assert.is_nil(urls.callback_id(P, P .. "/notificationchannel/v1/callbacks/a?x"))
    assert.is_nil(urls.callback_id(P, P .. "/notificationchannel/v1/callbacks/%zz"))
    assert.is_nil(urls.callback_id(P, 42))
  end)
end)
