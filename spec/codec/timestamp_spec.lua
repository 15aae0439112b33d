local timestamp = require("codec.timestamp")

describe("codec.timestamp", function()
  describe("parse_date", function()
    it("accepts real calendar days", function()
      assert.same({ 2024, 2, 29 }, { timestamp.parse_date("2024-02-29") })
      assert.same({ 2000, 2, 29 }, { timestamp.parse_date("2000-02-29") })
      assert.same({ 1927, 1, 10 }, { timestamp.parse_date("1927-01-10") })
      assert.same({ 2023, 12, 31 }, { timestamp.parse_date("2023-12-31") })
    end)

    for _, bad in ipairs({ "2023-02-30", "2023-02-29", "1900-02-29", "2023-04-31",
      "2023-13-01", "2023-00-10", "2023-01-00", "0000-01-01", "2023-1-01",
      "23-01-01", "2023/01/01", " 2023-01-01", "2023-01-01 ",
      "2023-01-01T00:00:00Z", "", "２０２３-01-01" }) do
      it("refuses " .. bad, function()
        assert.is_nil(timestamp.parse_date(bad))
      end)
    end

    it("refuses non-strings", function()
      assert.is_nil(timestamp.parse_date(20230101))
    end)
  end)

  describe("format and parse", function()
    it("formats UTC with milliseconds", function()
      assert.equal("1970-01-01T00:00:00.000Z", timestamp.format(0))
      assert.equal("2025-11-28T12:00:00.123Z", timestamp.format(1764331200123))
      assert.equal("2024-02-29T23:59:59.999Z", timestamp.format(1709251199999))
      assert.equal("1969-12-31T23:59:59.999Z", timestamp.format(-1))
    end)

    it("parses what it formats", function()
      for _, ms in ipairs({ 0, 1, 999, 86399999, 1709251199999, 1764331200123,
        253402300799999, -1 }) do
        assert.equal(ms, timestamp.parse(timestamp.format(ms)))
      end
    end)

    it("agrees with os.date on whole seconds", function()
      for _, s in ipairs({ 0, 951782400, 1709251199, 1764331200, 4102444800 }) do
        assert.equal(os.date("!%Y-%m-%dT%H:%M:%S", s) .. ".000Z", timestamp.format(s * 1000))
      end
    end)

    for _, bad in ipairs({ "2025-11-28T12:00:00Z", "2025-11-28T24:00:00.000Z",
      "2025-02-30T12:00:00.000Z", "2025-11-28 12:00:00.000Z", "x" }) do
      it("refuses " .. bad, function()
        assert.is_nil(timestamp.parse(bad))
      end)
    end
  end)

  it("rounds float seconds to the nearest millisecond", function()
    assert.equal(1764331200123, timestamp.ms_from_seconds(1764331200.123))
    assert.equal(1764331200001, timestamp.ms_from_seconds(1764331200.001))
    assert.equal("integer", math.type(timestamp.ms_from_seconds(1.5)))
  end)
end)
