-- A bearer token never seen before on every request: "<PREFIX>-<thread>-<n>" (the cache-miss path).
--   wrk ... -s lua/unique.lua URL -- PREFIX
local next_id = 0
function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
end

function init(args)
   prefix = (args[1] or "miss") .. "-" .. (id or 0) .. "-"
   n = 0
   headers = {}
   for k, v in pairs(wrk.headers) do headers[k] = v end
end

function request()
   n = n + 1
   headers["Authorization"] = "Bearer " .. prefix .. n
   return wrk.format(nil, nil, headers)
end
