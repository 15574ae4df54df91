-- POST /api/incidents/{id}/timeline on a random incident.
local n = 0
request = function()
   n = n + 1
   local body = string.format(
      '{"type": "note", "title": "Bench note %d", "description": "p99 back under 300 ms"}', n)
   return wrk.format("POST", "/api/incidents/" .. pick(incident_ids) .. "/timeline", nil, body)
end
