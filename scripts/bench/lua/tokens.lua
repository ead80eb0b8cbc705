-- One header value per request, taken from a file (one value per line, e.g. "Bearer tok-1" or
-- "shroud-at=<cookie>"): at random (measuring), or each value once in order, then again (warming up).
--   wrk ... -s lua/tokens.lua URL -- FILE HEADER random|seq THREADS
-- Every request string is built once in init(), so the per-request cost in wrk is one table lookup.
local next_id = 0
function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
end

function init(args)
   local file, header, order, threads = args[1], args[2], args[3] or "random", tonumber(args[4] or "2")
   local me = id or 0
   requests = {}
   local index = 0
   for line in io.lines(file) do
      -- in "seq" order each thread takes every THREADS-th value, so together they use each exactly once
      if order ~= "seq" or index % threads == me then
         local headers = {}
         for k, v in pairs(wrk.headers) do headers[k] = v end
         headers[header] = line
         requests[#requests + 1] = wrk.format(nil, nil, headers)
      end
      index = index + 1
   end
   count = #requests
   sequential = order == "seq"
   position = 0
   math.randomseed(os.time() * 1000 + me * 7919)
end

function request()
   if sequential then
      position = position % count + 1
      return requests[position]
   end
   return requests[math.random(count)]
end
