-- POST /api/incidents linked to two random services.
local severities = {"critical", "high", "medium", "low"}
local n = 0
request = function()
   n = n + 1
   local body = string.format(
      '{"title": "Bench incident %d", "severity": "%s", "service_ids": ["%s", "%s"], ' ..
      '"description": "Created by the scale benchmark"}',
      n, severities[math.random(4)], pick(service_ids), pick(service_ids))
   return wrk.format("POST", "/api/incidents", nil, body)
end
