-- POST /api/customers with a random identity: an insert (or, rarely, an update) plus its event.
wrk.method = "POST"
wrk.path = "/api/customers"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Service-Token"] = os.getenv("PARLEY_SERVICE_TOKEN") or "dev-service-token"
math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16))
request = function()
    local body = string.format(
        '{"external_type":"bench","external_id":"wrk-%d","name":"Bench User","metadata":{"k":"v"}}',
        math.random(1, 2000000000))
    return wrk.format(nil, nil, nil, body)
end
