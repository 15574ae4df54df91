-- 90% reads, 10% writes, as a busy incident room sees them:
-- reads: 45% one incident, 30% a filtered list, 15% an incident's timeline;
-- writes: 5% a timeline note, 3% a new incident, 2% a change of commander.
local lists = {
   "/api/incidents?status=open&severity=critical&limit=50",
   "/api/incidents?status=open&limit=50",
   "/api/incidents?status=investigating&status=identified&limit=50",
   "/api/incidents?severity=high&limit=50",
}
local n = 0
request = function()
   n = n + 1
   local r = math.random(100)
   local id = pick(incident_ids)
   if r <= 45 then
      return wrk.format("GET", "/api/incidents/" .. id)
   elseif r <= 75 then
      return wrk.format("GET", lists[math.random(#lists)])
   elseif r <= 90 then
      return wrk.format("GET", "/api/incidents/" .. id .. "/timeline?limit=50")
   elseif r <= 95 then
      return wrk.format("POST", "/api/incidents/" .. id .. "/timeline", nil,
         string.format('{"type": "note", "title": "Mixed note %d"}', n))
   elseif r <= 98 then
      return wrk.format("POST", "/api/incidents", nil, string.format(
         '{"title": "Mixed incident %d", "severity": "low", "service_ids": ["%s", "%s"]}',
         n, pick(service_ids), pick(service_ids)))
   else
      return wrk.format("PATCH", "/api/incidents/" .. id, nil,
         string.format('{"commander": "oncall-%d"}', n % 40))
   end
end
