local urls = require("movies.subscriptions.urls")

describe("movies.subscriptions.urls", function()
  local P = "http://nc.example:8080"

  it("builds the paths with the userId percent-encoded", function()
    assert.equal("/movies/v1/tel%3A%2B19585550100/subscriptions",
      urls.collection_path("tel:+19585550100"))
    assert.equal("/movies/v1/acr%3Apseudonym123/subscriptions/s1",
      urls.resource_path("acr:pseudonym123", "s1"))
    assert.equal("/movies/v1/a%2Fb%20c/subscriptions/x",
      urls.resource_path("a/b c", "x"))
  end)

  it("builds the URLs under public_url", function()
    assert.equal(P .. "/movies/v1/tel%3A%2B1/subscriptions",
      urls.collection(P, "tel:+1"))
    assert.equal(P .. "/movies/v1/tel%3A%2B1/subscriptions/abc_-1",
      urls.resource(P, "tel:+1", "abc_-1"))
  end)
end)
