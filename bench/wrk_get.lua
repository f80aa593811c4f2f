-- GET /api/customers/{id} over a fixed set of ids (the same set pgbench reads).
local ids = {}
for id in (os.getenv("BENCH_IDS") or ""):gmatch("[^,]+") do ids[#ids + 1] = id end
wrk.headers["X-Service-Token"] = os.getenv("PARLEY_SERVICE_TOKEN") or "dev-service-token"
request = function()
    return wrk.format("GET", "/api/customers/" .. ids[math.random(#ids)])
end
