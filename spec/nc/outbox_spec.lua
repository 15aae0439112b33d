local fixture = require("nc.fixture")
local fx = require("fixtures.nc_fixtures")
local structure = require("support.structure")
local channels = require("nc.channels")
local notification = require("codec.notification")
local outbox = require("nc.outbox")
local store = require("nc.store")
local xml = require("codec.xml")

local NC = "urn:oma:xml:rest:netapi:notificationchannel:1"

describe("nc.outbox", function()
  local f, ctx, row
  before_each(function()
    f = fixture.new()
    ctx = f.ctx
    row = channels.create(ctx, "tel:+1", { channel_type = "LongPolling" })
  end)
  after_each(function()
    f.close()
  end)

  -- Queues items ({ root, format, body }) and returns the stored rows.
  local function queue(items)
    for _, item in ipairs(items) do
      assert(store.enqueue(ctx.db, row.channel_id, item.root, item.format, item.body, fixture.T0))
    end
    return store.queued(ctx.db, row.channel_id)
  end

  -- Queues the notifications of a spec example, as a callback POST would.
  local function queue_example(name, content_type)
    return queue(assert(notification.split(fx.request(content_type, fx.load(name)))))
  end

  local function json_item(name, n)
    return { root = name, format = "json", body = '{"' .. name .. '":{"n":' .. n .. "}}" }
  end

  local function xml_item(name, n)
    return { root = name, format = "xml", body = "<m:" .. name .. ' xmlns:m="urn:m"><n>' .. n
      .. "</n></m:" .. name .. ">" }
  end

  describe("pending", function()
    it("gives rows oldest first, up to the limit", function()
      queue({ json_item("a", 1), json_item("b", 2), json_item("c", 3) })
      local rows = assert(outbox.pending(ctx, row.channel_id, { limit = 2 }))
      assert.same({ "a", "b" }, { rows[1].root, rows[2].root })
    end)

    it("starts after a seq", function()
      local all = queue({ json_item("a", 1), json_item("b", 2), json_item("c", 3) })
      local rows = assert(outbox.pending(ctx, row.channel_id, { after = all[1].seq, limit = 10 }))
      assert.same({ "b", "c" }, { rows[1].root, rows[2].root })
      assert.same({}, outbox.pending(ctx, row.channel_id, { after = all[3].seq, limit = 10 }))
    end)

    it("skips rows in flight and still fills the limit", function()
      local all = queue({ json_item("a", 1), json_item("b", 2), json_item("c", 3), json_item("d", 4) })
      local rows = assert(outbox.pending(ctx, row.channel_id,
        { limit = 2, skip = { [all[1].seq] = 1, [all[3].seq] = 2 } }))
      assert.same({ "b", "d" }, { rows[1].root, rows[2].root })
    end)

    it("reads only its channel's rows", function()
      local other = channels.create(ctx, "tel:+2", { channel_type = "LongPolling" })
      store.enqueue(ctx.db, other.channel_id, "x", "json", '{"x":{}}', fixture.T0)
      queue({ json_item("a", 1) })
      assert.equal(1, #outbox.pending(ctx, row.channel_id, { limit = 10 }))
    end)

    it("passes a store failure on", function()
      f.core.db.fail_with("disk I/O error")
      local rows, err, detail = outbox.pending(ctx, row.channel_id, { limit = 1 })
      assert.is_nil(rows)
      assert.equal("SVC2001", err.id)
      assert.equal("disk I/O error", detail)
      f.core.db.fail_with(nil)
    end)
  end)

  it("cuts a run of one stored format", function()
    local rows = queue({ json_item("a", 1), json_item("b", 2), xml_item("c", 3), json_item("d", 4) })
    local run = outbox.same_format(rows)
    assert.same({ "a", "b" }, { run[1].root, run[2].root })
    assert.equal(1, #outbox.same_format({ rows[3], rows[4] }))
    assert.same({ rows[1].seq, rows[2].seq }, outbox.seqs(run))
  end)

  it("settles delivered rows, and only those", function()
    local rows = queue({ json_item("a", 1), json_item("b", 2), json_item("c", 3) })
    assert.equal(2, outbox.settle(ctx, row.channel_id, { rows[1].seq, rows[3].seq }))
    local left = store.queued(ctx.db, row.channel_id)
    assert.same({ "b" }, { left[1].root })
    -- Settling twice (a notification sent on two connections) is harmless.
    assert.equal(0, outbox.settle(ctx, row.channel_id, { rows[1].seq }))
  end)

  it("settles nothing of another channel", function()
    local rows = queue({ json_item("a", 1) })
    assert.equal(0, outbox.settle(ctx, "other", { rows[1].seq }))
    assert.equal(1, f.count("outbox"))
  end)

  describe("list", function()
    it("converts notifications stored in the other format", function()
      local rows = queue({ json_item("a", 1), xml_item("b", 2) })
      local value, held, bad = outbox.list("json", rows)
      assert.equal(2, #held)
      assert.same({}, bad)
      assert.same({ "json", "json" }, { value.notifications[1].format, value.notifications[2].format })
      assert.equal('{"b":{"n":"2"}}', value.notifications[2].body)
      value = outbox.list("xml", rows)
      assert.equal("<a><n>1</n></a>", value.notifications[1].body)
      assert.equal(rows[2].body, value.notifications[2].body)
    end)

    it("leaves out a notification that cannot be converted", function()
      local rows = queue({ json_item("a", 1), json_item("b", 2) })
      rows[2].body = "not json" -- cannot happen through a callback
      local value, held, bad = outbox.list("xml", rows)
      assert.equal(1, #value.notifications)
      assert.same({ rows[1] }, held)
      assert.same({ rows[2] }, bad)
    end)
  end)

  -- OMA NC 6.3.5, C.2, D.12-D.15, I.4, I.5: what a notificationList looks
  -- like, compared by structure with the spec's examples.
  describe("notificationList formats", function()
    local function json_list(rows)
      return (outbox.encode("json", rows))
    end

    local function xml_list(rows)
      return (outbox.encode("xml", rows))
    end

    it("is an empty array in JSON (API.md 2; D.14 writes null)", function()
      assert.equal('{"notificationList":[]}', json_list({}))
      assert.same(structure.items(fx.load("D.14-response.json"), "application/json"),
        structure.items(json_list({}), "application/json"))
    end)

    it("is an empty element in XML (6.3.5.3)", function()
      local body, ct = outbox.encode("xml", {})
      assert.equal("application/xml", ct)
      assert.equal(xml.DECLARATION, body:sub(1, #xml.DECLARATION))
      assert.same(structure.xml(fx.load("6.3.5.3-response.xml")), structure.xml(body))
    end)

    it("holds one XML notification as 6.3.5.1, C.2.1 and I.4.1 do", function()
      local rows = queue_example("6.3.5.1-response.xml", "application/xml")
      local body = xml_list(rows)
      for _, name in ipairs({ "6.3.5.1-response.xml", "C.2.1-response.xml", "I.4.1.xml" }) do
        assert.same(structure.xml(fx.load(name)), structure.xml(body), name)
      end
    end)

    it("holds several XML notifications in order as 6.3.5.2 and I.4.2 do", function()
      local rows = queue_example("6.3.5.2-response.xml", "application/xml")
      assert.equal(3, #rows)
      local body = xml_list(rows)
      assert.same(structure.xml(fx.load("6.3.5.2-response.xml")), structure.xml(body))
      assert.same(structure.xml(fx.load("I.4.2.xml")), structure.xml(body))
    end)

    it("holds one JSON notification as D.12 and I.5.1 do, as an array", function()
      local rows = queue_example("D.12-response.json", "application/json")
      local body = json_list(rows)
      assert.matches('^{"notificationList":%[{"presenceNotification":', body)
      for _, name in ipairs({ "D.12-response.json", "I.5.1.json" }) do
        assert.same(structure.items(fx.load(name), "application/json"),
          structure.items(body, "application/json"), name)
      end
    end)

    it("holds several JSON notifications in order as D.13 and I.5.2 do", function()
      local rows = queue_example("D.13-response.json", "application/json")
      local body = json_list(rows)
      -- D.13 writes exactly our form: an array of one-key objects.
      assert.same(structure.json(fx.load("D.13-response.json")), structure.json(body))
      assert.same(structure.json(fx.load("I.5.2.json")), structure.json(body))
    end)

    it("mixes formats in JSON by converting XML ones (D.13 from both sources)", function()
      -- D.13's two message notifications as JSON, then 6.3.5.1's presence
      -- notification as XML: the list must read as D.13 does.
      local rows = queue_example("D.13-response.json", "application/json")
      store.dequeue(ctx.db, row.channel_id, { rows[3].seq })
      rows = queue_example("6.3.5.1-response.xml", "application/xml")
      assert.same({ "json", "json", "xml" }, { rows[1].format, rows[2].format, rows[3].format })
      local body = json_list(rows)
      assert.same(structure.json(fx.load("D.13-response.json")), structure.json(body))
    end)

    it("mixes formats in XML by converting JSON ones, the XML ones as sent", function()
      -- 6.3.5.2's list with D.12's presence notification (JSON) in front.
      queue_example("D.12-response.json", "application/json")
      local rows = queue_example("6.3.5.2-response.xml", "application/xml")
      local body = xml_list(rows)
      local got = structure.xml(body)
      local want = structure.xml(fx.load("6.3.5.2-response.xml"))
      assert.equal("{" .. NC .. "}notificationList", got.name)
      assert.equal(4, #got.children)
      -- The three XML notifications are 6.3.5.2's, in order.
      assert.same(want.children, { got.children[2], got.children[3], got.children[4] })
      -- The JSON one is unqualified XML that reads back as D.12's item.
      assert.equal("presenceNotification", got.children[1].name)
      assert.same(structure.items(fx.load("D.12-response.json"), "application/json")[1],
        structure.items(body, "application/xml")[1])
    end)
  end)
end)
