local errors = require("codec.errors")
local json = require("codec.json")

describe("codec.errors", function()
  it("builds an SVC0002 naming the message part", function()
    local err = errors.new("SVC0002", "premiereDate")
    assert.equal("SVC0002", err.id)
    assert.equal("serviceException", err.kind)
    assert.equal(400, err.status)
    assert.equal("Invalid input value for message part %1", err.text)
    assert.same({ "premiereDate" }, err.variables)
  end)

  it("builds the requestError body of OMA NC D.8", function()
    local err = errors.new("POL1023", "OMAPush", "LongPolling, WebSockets")
    assert.equal(403, err.status)
    assert.same(json.decode([[
      {"requestError": {"policyException": {
        "messageId": "POL1023",
        "text": "Notification channel type %1 not supported. Supported types: %2.",
        "variables": ["OMAPush", "LongPolling, WebSockets"]}}}]]),
      json.decode(json.encode(errors.body(err))))
  end)

  it("keeps the spec's texts for the codes the spec defines", function()
    assert.equal("Simultaneous channel requests not supported",
      errors.new("SVC1012").text)
    assert.equal(409, errors.new("SVC1012").status)
    assert.equal("A service error occurred. Error code is %1",
      errors.new("SVC0001", "x").text)
  end)

  it("answers 404, 405 and 415 with the private-range codes", function()
    assert.equal(404, errors.new("SVC3000", "/x").status)
    assert.equal(405, errors.new("SVC3001", "PUT", "GET").status)
    assert.equal(415, errors.new("SVC3002", "text/plain", "application/json").status)
    assert.equal(503, errors.new("SVC2001").status)
  end)

  it("turns variables into strings", function()
    assert.same({ "12" }, errors.new("SVC0002", 12).variables)
  end)

  it("raises for an unknown id or a wrong number of variables", function()
    assert.has_error(function() errors.new("SVC9999") end)
    assert.has_error(function() errors.new("SVC0002") end)
    assert.has_error(function() errors.new("SVC0002", "a", "b") end)
  end)

  it("declares as many variables as each text has placeholders", function()
    for _, id in ipairs(errors.ids()) do
      local highest = 0
      local text
      -- Find the declared count by trying counts until one is accepted.
      for n = 0, 5 do
        local args = {}
        for i = 1, n do
          args[i] = "v" .. i
        end
        local ok, err = pcall(errors.new, id, table.unpack(args, 1, n))
        if ok then
          text = err.text
          for d in text:gmatch("%%(%d)") do
            highest = math.max(highest, tonumber(d))
          end
          assert.equal(n, highest, id .. " declares " .. n .. " variables")
          break
        end
      end
      assert.is_not_nil(text, id .. " accepts no variable count")
    end
  end)

  it("fills placeholders for log lines", function()
    assert.equal("Invalid input value for message part limit",
      errors.message(errors.new("SVC0002", "limit")))
  end)

  it("recognises its own errors", function()
    assert.is_true(errors.is_error(errors.new("SVC1012")))
    assert.is_false(errors.is_error("SVC1012"))
    assert.is_false(errors.is_error({ id = "nope", variables = {} }))
  end)

  it("does not share the variables table between body and error", function()
    local err = errors.new("SVC0002", "a")
    local body = errors.body(err)
    body.requestError.serviceException.variables[1] = "b"
    assert.same({ "a" }, err.variables)
  end)
end)
