-- Bearer tokens "load-<n>" for n in FROM..TO: each once in order, then again ("seq", loading the cache),
-- or at random ("random", cache hits drawn from the loaded set).
--   wrk ... -s lua/range.lua URL -- FROM TO seq|random THREADS
local next_id = 0
function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
end

function init(args)
   from, to, order, threads = tonumber(args[1]), tonumber(args[2]), args[3] or "random", tonumber(args[4] or "2")
   me = id or 0
   sequential = order == "seq"
   nextn = from + me -- thread `me` takes from+me, from+me+THREADS, ...
   headers = {}
   for k, v in pairs(wrk.headers) do headers[k] = v end
   math.randomseed(os.time() * 1000 + me * 7919)
end

function request()
   local n
   if sequential then
      n = nextn
      nextn = nextn + threads
      if nextn > to then nextn = from + me end
   else
      n = math.random(from, to)
   end
   headers["Authorization"] = "Bearer load-" .. n
   return wrk.format(nil, nil, headers)
end
