-- GET /api/customers/{id} over a fixed set of ids (the same set pgbench reads).
-- Requests are formatted once, so the load generator spends its CPU on sending, not on Lua.
wrk.headers["X-Service-Token"] = os.getenv("PARLEY_SERVICE_TOKEN") or "dev-service-token"
local reqs = {}
for id in (os.getenv("BENCH_IDS") or ""):gmatch("[^,]+") do
    reqs[#reqs + 1] = wrk.format("GET", "/api/customers/" .. id)
end
request = function()
    return reqs[math.random(#reqs)]
end
