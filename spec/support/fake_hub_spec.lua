local fake_hub = require("support.fake_hub")

-- The fake must keep the promises of core/script.h that the scripts rely
-- on, or specs would pass against a core that does not exist.
describe("support.fake_hub", function()
  local hub, events, app
  before_each(function()
    hub = fake_hub.new()
    events = {}
    app = {
      written = function(token, ok) events[#events + 1] = { "written", token, ok } end,
      gone = function(key, id, why, code) events[#events + 1] = { "gone", key, id, why, code } end,
    }
  end)

  local OK = { status = 200, headers = {}, body = "" }

  it("says what holds a key, and none when nothing does", function()
    assert.is_nil(hub.held("k"))
    assert.same({ nil, "none" }, { hub.answer("k", OK) })
    assert.same({ nil, "none" }, { hub.send("k", "x") })
    assert.same({ nil, "none" }, { hub.close("k") })
    hub.apply("k", { status = 200, park = { key = "k", timeout_ms = 10 } })
    assert.equal("parked", hub.held("k"))
    assert.same({ nil, "none" }, { hub.send("k", "x") })
    hub.apply("w", { upgrade = { key = "w" } })
    assert.equal("websocket", hub.held("w"))
    assert.same({ nil, "none" }, { hub.answer("w", OK) })
  end)

  it("frees a key at once on answer, without gone", function()
    hub.apply("k", { status = 200, park = { key = "k", timeout_ms = 10 } })
    assert.is_true(hub.answer("k", OK, 5))
    assert.is_nil(hub.held("k"))
    hub.answered(true)
    hub.deliver(app)
    assert.same({ { "written", 5, true } }, events)
  end)

  it("ends an older parked request with its own timeout response", function()
    local first = hub.apply("k", { status = 204, park = { key = "k", timeout_ms = 10 } })
    hub.apply("k", { status = 200, park = { key = "k", timeout_ms = 10 } })
    assert.equal(204, hub.responses[1].res.status)
    hub.deliver(app)
    assert.same({ { "gone", "k", first, "replaced", 0 } }, events)
  end)

  it("refuses sends past the window, and reports each token once", function()
    local id = hub.apply("w", { upgrade = { key = "w" } })
    hub.limit("w", 1)
    assert.is_true(hub.send("w", "a", 1))
    assert.same({ nil, "full" }, { hub.send("w", "b", 2) })
    hub.drain("w")
    assert.is_true(hub.send("w", "c", 3))
    hub.close("w", 1008, "bye")
    assert.is_nil(hub.held("w"))
    hub.deliver(app)
    assert.same({ { "written", 1, true }, { "written", 3, false },
      { "gone", "w", id, "closed", 1008 } }, events)
    assert.same({ key = "w", id = id, code = 1008, reason = "bye" }, hub.closed[1])
  end)

  it("replaces a WebSocket, closing the old one with 1000", function()
    local first = hub.apply("w", { upgrade = { key = "w" } })
    local second = hub.apply("w", { upgrade = { key = "w" } })
    assert.are_not.equal(first, second)
    hub.deliver(app)
    assert.same({ { "gone", "w", first, "replaced", 1000 } }, events)
  end)
end)
