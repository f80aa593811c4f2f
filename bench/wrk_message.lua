-- POST /api/messages: every wrk thread has one connection and writes into its own conversation.
-- BENCH_CONVS holds "conversation:sender" pairs, one per thread.
local pairs_list = {}
for p in (os.getenv("BENCH_CONVS") or ""):gmatch("[^,]+") do pairs_list[#pairs_list + 1] = p end
local next_thread = 1

function setup(thread)
    thread:set("pair", pairs_list[next_thread])
    next_thread = next_thread + 1
end

function init(args)
    local conv, sender = pair:match("([^:]+):([^:]+)")
    local body = string.format('{"conversation_id":"%s","sender_customer_id":"%s",' ..
        '"direction":"inbound","body":"hello from the benchmark","content_type":"text"}', conv, sender)
    req = wrk.format("POST", "/api/messages", {
        ["Content-Type"] = "application/json",
        ["X-Service-Token"] = os.getenv("PARLEY_SERVICE_TOKEN") or "dev-service-token",
    }, body)
end

function request()
    return req
end
