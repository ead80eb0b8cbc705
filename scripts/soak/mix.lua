-- One kind of soak traffic per wrk process, with a tally of every status it got back.
--   wrk -t1 -c N -d S -s scripts/soak/mix.lua URL -- KIND EXPECTED-STATUS [FILE HEADER]
-- KIND is hit | cookie (a random value of FILE in HEADER: "Bearer soak-hit-1" or "shroud-at=<cookie>"),
-- miss (a bearer token never seen before on every request) or invalid (tokens the authorization server
-- calls inactive, "invalid-<n>", each repeated now and then).
-- done() prints one line: "soak KIND requests=N expected=N unexpected=N statuses=200:N,401:N
-- errors=connect:N,read:N,write:N,timeout:N".
local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   kind, expected = args[1], tonumber(args[2])
   local file, header = args[3], args[4]
   statuses = {}
   headers = {}
   for k, v in pairs(wrk.headers) do headers[k] = v end
   prefix = "soak-" .. kind .. "-" .. os.time() .. "-" .. (id or 0) .. "-"
   n = 0
   values = {}
   if file then
      for line in io.lines(file) do values[#values + 1] = line end
      name = header
   end
   math.randomseed(os.time() * 1000 + (id or 0) * 7919)
end

function request()
   n = n + 1
   if kind == "miss" then
      headers["Authorization"] = "Bearer " .. prefix .. n
   elseif kind == "invalid" then
      headers["Authorization"] = "Bearer invalid-" .. math.random(1, 5000)
   else
      headers[name] = values[math.random(#values)]
   end
   return wrk.format(nil, nil, headers)
end

function response(status, hdrs, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local all = {}
   for _, t in ipairs(threads) do
      for status, count in pairs(t:get("statuses")) do all[status] = (all[status] or 0) + count end
   end
   local expected = threads[1]:get("expected")
   local total, good, parts = 0, 0, {}
   for status, count in pairs(all) do
      total = total + count
      if status == expected then good = good + count end
      parts[#parts + 1] = status .. ":" .. count
   end
   table.sort(parts)
   local e = summary.errors
   io.write(string.format("soak %s requests=%d expected=%d unexpected=%d statuses=%s errors=connect:%d,read:%d,write:%d,timeout:%d p99_ms=%.2f\n",
      threads[1]:get("kind"), total, good, total - good, table.concat(parts, ","),
      e.connect, e.read, e.write, e.timeout, latency:percentile(99) / 1000))
end
